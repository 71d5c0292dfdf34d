//! Every filter, one table each, with Shopify's documented examples where there are some.

mod support;

use herald_template::{Escape, Limits, WarningKind};
use serde_json::{Value, json};
use support::{table, text, try_render};

fn vars() -> Value {
    json!({
        "name": "ada lovelace",
        "price": "149.00",
        "n": 7,
        "f": 4.5612,
        "zero": 0,
        "nothing": null,
        "no": false,
        "blank": "",
        "items": ["b", "a", "c"],
        "nums": [3, 1, 2],
        "mixed": [2, "a", null, 1, true],
        "people": [{"name": "Ada", "age": 36}, {"name": "Alan"}, {"name": "Grace", "age": 85}],
        "when": "2026-11-23T09:30:00+01:00",
        "ts": 1795000000,
        "ts_text": "1795000000",
        "markup": "<b>\"Tom\" & 'Jerry'</b>"
    })
}

#[test]
fn default() {
    table(
        &vars(),
        &[
            ("{{ missing | default: 'there' }}", "there"),
            ("{{ nothing | default: 'x' }}", "x"),
            ("{{ no | default: 'x' }}", "x"),
            ("{{ no | default: 'x', allow_false: true }}", "false"),
            ("{{ blank | default: 'x' }}", "x"),
            ("{{ zero | default: 'x' }}", "0"),
            ("{{ name | default: 'x' }}", "ada lovelace"),
            ("{{ customer.first_name | default: name }}", "ada lovelace"),
            ("{{ missing.deep[0] | upcase | default: 'there' }}", "there"),
        ],
    );
}

#[test]
fn date() {
    table(
        &vars(),
        &[
            ("{{ when | date: '%F %T %z' }}", "2026-11-23 09:30:00 +0100"),
            ("{{ when | date: '%a, %b %e, %Y %I:%M %p' }}", "Mon, Nov 23, 2026 09:30 AM"),
            ("{{ when | date: '%A %B %-d %y %j %D' }}", "Monday November 23 26 327 11/23/26"),
            ("{{ '2026-11-23' | date: '%d/%m/%Y %H:%M %Z' }}", "23/11/2026 00:00 UTC"),
            ("{{ ts | date: '%F %T' }}", "2026-11-18 11:06:40"),
            ("{{ ts_text | date: '%s' }}", "1795000000"),
            ("{{ 'now' | date: '%Y-%m-%d %H:%M' }}", "2026-11-23 08:05"),
            ("{{ 'today' | date: '%F' }}", "2026-11-23"),
            ("{{ 'not a date' | date: '%F' }}", "not a date"),
            ("{{ nothing | date: '%F' }}", ""),
            ("{{ when | date: '' }}", "2026-11-23T09:30:00+01:00"),
            ("{{ when | date: '100%%' }}", "100%"),
        ],
    );
    let rendered = try_render("{{ 'soon' | date: '%F' }}", &json!({}), Escape::Text, &Limits::default());
    assert!(
        matches!(&rendered.warnings[..], [w] if matches!(&w.kind, WarningKind::Filter { filter: "date", .. })),
        "{:?}",
        rendered.warnings
    );
}

#[test]
fn case_filters() {
    table(
        &vars(),
        &[
            ("{{ name | upcase }}", "ADA LOVELACE"),
            ("{{ 'ÉTÉ' | downcase }}", "été"),
            ("{{ name | capitalize }}", "Ada lovelace"),
            ("{{ 'my GREAT title' | capitalize }}", "My great title"),
            ("{{ '' | capitalize }}{{ nothing | upcase }}", ""),
            ("{{ n | upcase }}", "7"),
        ],
    );
}

#[test]
fn arithmetic() {
    table(
        &vars(),
        &[
            ("{{ 4 | plus: 2 }} {{ 16 | plus: 4 }} {{ 183.357 | plus: 12 }}", "6 20 195.357"),
            ("{{ 4 | minus: 2 }} {{ 183.357 | minus: 12 }}", "2 171.357"),
            ("{{ 3 | times: 2 }} {{ 24 | times: 7 }} {{ 183.357 | times: 12 }}", "6 168 2200.284"),
            ("{{ 16 | divided_by: 4 }} {{ 5 | divided_by: 3 }} {{ 20 | divided_by: 7.0 }}", "4 1 2.857142857142857"),
            ("{{ -7 | divided_by: 2 }} {{ 7 | divided_by: -2 }}", "-4 -4"),
            ("{{ 3 | modulo: 2 }} {{ 24 | modulo: 7 }} {{ 183.357 | modulo: 12 }}", "1 3 3.3569999999999993"),
            ("{{ -7 | modulo: 3 }} {{ 7 | modulo: -3 }}", "2 -2"),
            (
                "{{ price | plus: 1 }} {{ '3' | times: '4' }} {{ nothing | plus: 1 }} {{ 'abc' | plus: 1 }}",
                "150.0 12 1 1",
            ),
            ("{{ 9223372036854775807 | plus: 1 }}", "9.223372036854776e+18"),
            (
                "{{ 1.2 | round }} {{ 2.7 | round }} {{ 183.357 | round: 2 }} {{ f | round: 2 }} {{ 5 | round: 2 }}",
                "1 3 183.36 4.56 5",
            ),
            ("{{ 1.2 | ceil }} {{ 2.0 | ceil }} {{ '3.5' | ceil }} {{ 1.9 | floor }} {{ -1.1 | floor }}", "2 2 4 1 -2"),
            ("{{ -17 | abs }} {{ 4 | abs }} {{ '-19.86' | abs }}", "17 4 19.86"),
            ("{{ 4 | at_least: 5 }} {{ 4 | at_least: 3 }} {{ 4 | at_most: 5 }} {{ 4 | at_most: 3 }}", "5 4 4 3"),
        ],
    );
    for source in ["{{ n | divided_by: zero }}", "{{ n | modulo: 0 }}", "{{ 1.5 | divided_by: 0.0 }}"] {
        let rendered = try_render(source, &vars(), Escape::Text, &Limits::default());
        assert_eq!(rendered.output, "", "{source}");
        assert!(rendered.warnings[0].to_string().contains("division by zero"), "{source}: {:?}", rendered.warnings);
    }
}

#[test]
fn size_first_last() {
    table(
        &vars(),
        &[
            (
                "{{ name | size }} {{ items | size }} {{ people[0] | size }} {{ nothing | size }} {{ 'été' | size }}",
                "12 3 2 0 3",
            ),
            ("{{ items | first }} {{ items | last }} {{ name | first }} {{ name | last }}", "b c a e"),
            ("[{{ blank | first }}][{{ nothing | last }}]", "[][]"),
            ("{{ name | split: ' ' | first }}", "ada"),
        ],
    );
}

#[test]
fn split_and_join() {
    table(
        &vars(),
        &[
            ("{{ 'a,b,c' | split: ',' | join: '-' }}", "a-b-c"),
            ("{{ 'a,b,,c,,' | split: ',' | size }}", "4"),
            ("{{ '  a  b c ' | split: ' ' | join: '|' }}", "a|b|c"),
            ("{{ 'abc' | split: '' | join: '.' }}", "a.b.c"),
            ("{{ '' | split: ',' | size }}", "0"),
            ("{{ items | join }} {{ items | join: ', ' }} {{ nums | join: '+' }}", "b a c b, a, c 3+1+2"),
            ("{{ name | join: ',' }}", "ada lovelace"),
        ],
    );
}

#[test]
fn replace_and_remove() {
    table(
        &vars(),
        &[
            ("{{ 'Take my protein pills' | replace: 'my', 'your' }}", "Take your protein pills"),
            ("{{ 'a-b-c' | replace: '-', '+' }} {{ 'a-b-c' | replace_first: '-', '+' }}", "a+b+c a+b-c"),
            ("{{ 'I strained to see the train' | remove: 'rain' }}", "I sted to see the t"),
            ("{{ 'a-b-c' | remove_first: '-' }} {{ 'abc' | replace: '', 'x' }}", "ab-c abc"),
        ],
    );
}

#[test]
fn strips_and_truncation() {
    table(
        &vars(),
        &[
            ("[{{ '  x y  ' | strip }}][{{ '  x ' | lstrip }}][{{ ' x  ' | rstrip }}]", "[x y][x ][ x]"),
            ("{{ 'a\nb\r\nc' | strip_newlines }}", "abc"),
            ("{{ '<p>Hi <b>there</b></p><script>x()</script><!-- c -->!' | strip_html }}", "Hi there!"),
            ("{{ 'Ground control to Major Tom.' | truncate: 20 }}", "Ground control to..."),
            ("{{ 'Ground control to Major Tom.' | truncate: 25, ', and so on' }}", "Ground control, and so on"),
            ("{{ 'Ground control to Major Tom.' | truncate: 20, '' }}", "Ground control to Ma"),
            ("{{ 'short' | truncate: 20 }} {{ 'été!' | truncate: 3, '…' }}", "short ét…"),
            ("{{ 'Ground control to Major Tom.' | truncatewords: 3 }}", "Ground control to..."),
            ("{{ 'Ground control to Major Tom.' | truncatewords: 3, '--' }}", "Ground control to--"),
            ("{{ 'one two' | truncatewords: 5 }}", "one two"),
        ],
    );
}

#[test]
fn array_filters() {
    table(
        &vars(),
        &[
            (
                "{{ items | reverse | join: ',' }} {{ items | sort | join: ',' }} {{ nums | sort | join: ',' }}",
                "c,a,b a,b,c 1,2,3",
            ),
            ("{{ mixed | sort | json }}", "[null,true,1,2,\"a\"]"),
            ("{{ people | map: 'name' | join: ', ' }}", "Ada, Alan, Grace"),
            ("{{ people | map: 'age' | compact | join: ',' }}", "36,85"),
            ("{{ items | slice: 1 }} {{ items | slice: 1, 2 | join: ',' }} {{ items | slice: -1 }}", "a a,c c"),
            ("{{ 'Liquid' | slice: 2, 5 }} {{ 'Liquid' | slice: -3, 2 }} [{{ 'Liquid' | slice: 10 }}]", "quid ui []"),
        ],
    );
}

#[test]
fn escaping_filters() {
    table(
        &vars(),
        &[
            ("{{ markup | escape }}", "&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;"),
            (
                "{{ 'john@liquid.com' | url_encode }} {{ 'Tetsuro Takara' | url_encode }}",
                "john%40liquid.com Tetsuro+Takara",
            ),
            ("{{ 'é/?~' | url_encode }}", "%C3%A9%2F%3F~"),
            ("{{ '%27Stop%21%27+said+Fred' | url_decode }} {{ '%C3%A9%zz' | url_decode }}", "'Stop!' said Fred é%zz"),
        ],
    );
}

#[test]
fn json_and_raw() {
    table(
        &vars(),
        &[
            ("{{ people[0] | json }}", r#"{"age":36,"name":"Ada"}"#),
            (
                "{{ name | json }} {{ n | json }} {{ nothing | json }} {{ missing | json }}",
                r#""ada lovelace" 7 null null"#,
            ),
            ("{{ '<b>' | raw }}", "<b>"),
        ],
    );
}

#[test]
fn append_and_prepend() {
    table(
        &vars(),
        &[
            ("{{ '/my/fancy/url' | append: '.html' }}", "/my/fancy/url.html"),
            ("{{ 'apples, oranges' | prepend: 'Some fruit: ' }}", "Some fruit: apples, oranges"),
            ("{{ n | append: 1 }} {{ nothing | append: 'x' }}", "71 x"),
        ],
    );
}

#[test]
fn filters_chain() {
    assert_eq!(text("{{ name | split: ' ' | last | capitalize | prepend: 'Dr. ' }}", &vars()), "Dr. Lovelace");
}
