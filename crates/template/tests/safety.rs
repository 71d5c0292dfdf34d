//! What protects recipients and workers: HTML escaping, warnings instead of failures for
//! missing data, bounded work and output, compile errors with positions, no panics.

mod support;

use herald_template::{Escape, Limits, MAX_NESTING, MAX_WARNINGS, RenderError, Template, WarningKind};
use serde_json::{Value, json};
use support::{NOW, compile_error, html, text, try_render};

fn contact() -> Value {
    json!({
        "customer": { "first_name": "<script>alert('x')</script>", "company": "Tom & \"Jerry\"", "age": 36 },
        "url": "https://x.test/?a=1&b=2"
    })
}

fn render_err(source: &str, limits: &Limits) -> RenderError {
    let template = Template::compile(source).unwrap_or_else(|e| panic!("{source:?} does not compile: {e}"));
    match template.render_at(&json!({"s": "x"}), Escape::Text, limits, NOW) {
        Ok(r) => panic!("{source:?} rendered {} bytes", r.output.len()),
        Err(e) => e,
    }
}

#[test]
fn html_mode_escapes_every_output() {
    let vars = contact();
    let cases = [
        ("<p>Hi {{ customer.first_name }}</p>", "<p>Hi &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</p>"),
        ("<a title=\"{{ customer.company }}\">", "<a title=\"Tom &amp; &quot;Jerry&quot;\">"),
        ("<a href=\"{{ url }}\">", "<a href=\"https://x.test/?a=1&amp;b=2\">"),
        ("{{ customer.first_name | upcase }}", "&lt;SCRIPT&gt;ALERT(&#39;X&#39;)&lt;/SCRIPT&gt;"),
        ("{{ customer.age | plus: 1 }}", "37"),
        // `escape` already escaped; `raw` opts out.
        ("{{ customer.company | escape }}", "Tom &amp; &quot;Jerry&quot;"),
        ("{{ '<b>bold</b>' | raw }}", "<b>bold</b>"),
        ("{{ customer.company | raw | upcase }}", "TOM &amp; &quot;JERRY&quot;"),
        (
            "{{ customer | json }}",
            "{&quot;age&quot;:36,&quot;company&quot;:&quot;Tom &amp; \\&quot;Jerry\\&quot;&quot;,&quot;first_name&quot;:&quot;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;}",
        ),
        // A capture is escaped as it is built, and not again when written.
        ("{% capture b %}<b>{{ customer.company }}</b>{% endcapture %}{{ b }}", "<b>Tom &amp; &quot;Jerry&quot;</b>"),
        ("{% assign c = customer.company %}{{ c }}", "Tom &amp; &quot;Jerry&quot;"),
        ("{% raw %}<b>{{ x }}</b>{% endraw %}", "<b>{{ x }}</b>"),
    ];
    for (source, want) in cases {
        assert_eq!(html(source, &vars), want, "{source}");
    }
}

#[test]
fn text_mode_escapes_nothing() {
    let vars = contact();
    assert_eq!(text("{{ customer.company }} {{ url }}", &vars), "Tom & \"Jerry\" https://x.test/?a=1&b=2");
    assert_eq!(text("{{ customer.company | escape }}", &vars), "Tom &amp; &quot;Jerry&quot;");
}

#[test]
fn missing_variables_render_empty_with_a_warning() {
    let source = "Hi {{ customer.frist_name }}!\n{{ nope | upcase }}{% if customer.nickname %}n{% endif %}\
                  {{ gone | default: 'x' }}{% for i in (1..3) %}{{ loop_missing }}{% endfor %}{% for x in absent %}{% endfor %}";
    let rendered = try_render(source, &contact(), Escape::Html, &Limits::default());
    assert_eq!(rendered.output, "Hi !\nx");
    let shown: Vec<String> = rendered.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "line 1, column 7: `customer.frist_name` is not defined",
            "line 2, column 4: `nope` is not defined",
            "line 2, column 107: `loop_missing` is not defined",
            "line 2, column 146: `absent` is not defined",
        ]
    );
    assert!(
        matches!(&rendered.warnings[0].kind, WarningKind::MissingVariable { path } if path == "customer.frist_name")
    );

    let many: String = (0..MAX_WARNINGS + 10).map(|i| format!("{{{{ v{i} }}}}")).collect();
    assert_eq!(try_render(&many, &json!({}), Escape::Text, &Limits::default()).warnings.len(), MAX_WARNINGS);
}

#[test]
fn endless_loops_run_out_of_steps() {
    let limits = Limits::default();
    let step_limit = RenderError::StepBudgetExceeded { limit: limits.max_steps };
    for source in [
        "{% for i in (1..1000000000) %}{% endfor %}",
        "{% for i in (1..1000000000) %}{{ i }}{% endfor %}",
        "{% for a in (1..100000) %}{% for b in (1..100000) %}{% for c in (1..100000) %}{% endfor %}{% endfor %}{% endfor %}",
        "{% assign r = (1..1000000000) %}",
        "{% for i in (-9223372036854775807..9223372036854775807) %}{% endfor %}",
        "{% assign s = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' | split: '' %}{% for a in s %}{% for b in s %}{% for c in s %}{% for d in s %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}",
    ] {
        assert_eq!(render_err(source, &limits), step_limit, "{source}");
    }
    // Scanning one large value again and again costs by its size, not one step per scan.
    let big = "{% capture s %}{% for i in (1..1000) %}0123456789{% endfor %}{% endcapture %}";
    for scan in [
        "{% for i in (1..100000) %}{% if s contains 'zz' %}{% endif %}{% endfor %}",
        "{% for i in (1..100000) %}{% assign n = s | size %}{% endfor %}",
    ] {
        assert_eq!(render_err(&format!("{big}{scan}"), &limits), step_limit, "{scan}");
    }
    assert_eq!(
        render_err("{% for i in (1..100) %}{% endfor %}", &Limits { max_steps: 50, ..Limits::default() }),
        RenderError::StepBudgetExceeded { limit: 50 }
    );
}

#[test]
fn huge_output_is_refused() {
    let limits = Limits { max_output_bytes: 10_000, ..Limits::default() };
    let too_large = RenderError::OutputTooLarge { limit: 10_000 };
    for source in [
        "{% for i in (1..100000) %}0123456789{% endfor %}",
        "{% for i in (1..100000) %}{{ s }}{% endfor %}",
        // Doubling a string: the value is refused long before it can fill memory.
        "{% assign s = 'x' %}{% for i in (1..64) %}{% assign s = s | append: s %}{% endfor %}",
        "{% assign s = 'xxxxxxxxxx' %}{% for i in (1..64) %}{% assign s = s | replace: 'x', s %}{% endfor %}",
        "{% capture c %}{% for i in (1..100000) %}xx{% endfor %}{% endcapture %}",
    ] {
        assert_eq!(render_err(source, &limits), too_large, "{source}");
    }
    let fits = "{% for i in (1..1000) %}0123456789{% endfor %}";
    assert_eq!(try_render(fits, &json!({}), Escape::Text, &limits).output.len(), 10_000);
    assert!(too_large.to_string().contains("more than 10000 bytes"), "{too_large}");
}

#[test]
fn compile_errors_name_line_and_column() {
    let cases = [
        ("Hi\n\nHello {{ x | upcse }}", "line 3, column 14: unknown filter `upcse`"),
        ("a\n  {% if x %}b", "line 2, column 3: `{% if %}` is never closed with `{% endif %}`"),
        (
            "{% for i in items %}{% if x %}{% endfor %}",
            "line 1, column 21: `{% if %}` is never closed with `{% endif %}` (found `{% endfor %}` first)",
        ),
        ("{{ x", "line 1, column 1: `{{` is never closed with `}}`"),
        ("{% include 'x' %}", "line 1, column 4: unknown tag `include`"),
        ("{% endif %}", "line 1, column 1: unexpected `{% endif %}`: no open block takes it"),
        (
            "{% if a %}{% else if b %}{% endif %}",
            "line 1, column 19: `{% else %}` takes nothing here (for another condition, write `{% elsif … %}`)",
        ),
        ("{% break %}", "line 1, column 1: `{% break %}` outside a `for` loop"),
        ("{{ x | date }}", "line 1, column 8: filter `date` takes 1 argument, not 0"),
        ("{{ x | truncate: 1, 2, 3 }}", "line 1, column 8: filter `truncate` takes 1 to 2 arguments, not 3"),
        ("{{ x | upcase: 1 }}", "line 1, column 8: filter `upcase` takes no arguments, not 1"),
        ("{{ x | default: 1, allow: true }}", "line 1, column 20: filter `default` has no option `allow`"),
        ("{{ 'abc }}", "line 1, column 4: this string is never closed"),
        ("{{ x y }}", "line 1, column 6: unexpected `y`"),
        ("{{ x | }}", "line 1, column 8: expected a filter name after `|`, found nothing"),
        (
            "{% if x = 1 %}{% endif %}",
            "line 1, column 9: expected a comparison (`==` compares; `=` assigns), found `=`",
        ),
        (
            "{% for x items %}{% endfor %}",
            "line 1, column 10: expected `in` (`{% for item in collection %}`), found `items`",
        ),
        ("{% assign = 1 %}", "line 1, column 11: expected a variable name after `assign`, found `=`"),
        ("{{ a[1 }}", "line 1, column 8: expected `]`, found nothing"),
        ("{{ $ }}", "line 1, column 4: unexpected character `$`"),
        ("{% %}", "line 1, column 1: empty tag: expected a tag name after `{%`"),
        ("é {{ x | nope }}", "line 1, column 10: unknown filter `nope`"),
    ];
    for (source, want) in cases {
        assert_eq!(compile_error(source).to_string(), want, "{source}");
    }
    let e = compile_error("\n\n  {{ x | upcse }}");
    assert_eq!((e.line, e.column, e.message.as_str()), (3, 10, "unknown filter `upcse`"));
}

#[test]
fn nesting_is_bounded_at_compile_time() {
    let deep = |n: usize| "{% if true %}".repeat(n) + &"{% endif %}".repeat(n);
    assert!(Template::compile(&deep(MAX_NESTING)).is_ok());
    assert!(compile_error(&deep(MAX_NESTING + 1)).message.contains("nest more than 64 deep"));
    let brackets = |n: usize| format!("{{{{ a{}{} }}}}", "[a".repeat(n), "]".repeat(n));
    assert!(Template::compile(&brackets(10)).is_ok());
    assert!(compile_error(&brackets(100_000)).message.contains("nest more than 64 deep"));
    assert!(Template::compile(&"{% if true %}".repeat(100_000)).is_err());
    let chain = |n: usize| format!("{{% if a{} %}}x{{% endif %}}", " or a".repeat(n));
    assert!(Template::compile(&chain(MAX_NESTING)).is_ok());
    assert!(compile_error(&chain(100_000)).message.contains("joins more than 64 comparisons"));
}

/// A cheap, deterministic stand-in for the fuzz target: templates spliced from fragments must
/// compile or fail cleanly, and render or fail cleanly, without panicking.
#[test]
fn spliced_garbage_never_panics() {
    const PIECES: [&str; 40] = [
        "{{",
        "}}",
        "{%",
        "%}",
        "-",
        " ",
        "if",
        "endif",
        "for",
        "in",
        "endfor",
        "(1..3)",
        "x",
        "a.b",
        "[0]",
        "|",
        "date:",
        "'%F'",
        "\"",
        "'",
        "default:",
        "split:",
        ",",
        "==",
        "contains",
        "and",
        "or",
        "else",
        "case",
        "when",
        "assign",
        "=",
        "capture",
        "endcapture",
        "raw",
        "endraw",
        "comment",
        "é",
        "forloop.index",
        "\n",
    ];
    let vars = json!({"x": [1, "2", {"a": null}], "a": {"b": "2026-11-23"}});
    let limits = Limits { max_output_bytes: 4096, max_steps: 2000 };
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let len = next() % 24;
        let source: String = (0..len).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect();
        if let Ok(template) = Template::compile(&source) {
            let _ = template.render_at(&vars, Escape::Html, &limits, NOW);
        }
    }
}
