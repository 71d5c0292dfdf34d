//! Output, variables, literals, whitespace control and every tag, as Shopify documents them.

mod support;

use serde_json::{Value, json};
use support::{table, text};

fn customer() -> Value {
    json!({
        "customer": {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "company_url": "https://analytical.test",
            "plan": "pro",
            "orders": 3,
            "total_spent": "149.00",
            "tags": ["vip", "beta"],
            "address": { "city": "London", "zip code": "N1" },
            "nickname": null,
            "active": false
        },
        "products": [
            { "title": "Mug", "price": 12 },
            { "title": "Tea", "price": 5 },
            { "title": "Pot", "price": 30 }
        ],
        "first_name": "Ada",
        "i": 1,
        "key": "city",
        "empty_list": [],
        "blank_text": "   "
    })
}

#[test]
fn seed_examples() {
    let vars = customer();
    table(
        &vars,
        &[
            ("Hello {{ customer.first_name }}!", "Hello Ada!"),
            ("{% if customer.company_url.size > 0 %}site{% endif %}", "site"),
            ("{{first_name | default: \"there\"}}", "Ada"),
        ],
    );
    assert_eq!(text("Hi {{first_name | default: \"there\"}}", &json!({})), "Hi there");
    assert_eq!(text("{% if customer.company_url.size > 0 %}site{% endif %}", &json!({"customer": {}})), "");
    assert_eq!(text("{{ x | date: \"%F\" }}", &json!({"x": "2026-11-23T10:00:00Z"})), "2026-11-23");
    let json_out = text("{{ customer | json }}", &json!({"customer": {"email": "a@x.test", "tags": ["a"]}}));
    assert_eq!(
        serde_json::from_str::<Value>(&json_out).unwrap_or_default(),
        json!({"email": "a@x.test", "tags": ["a"]})
    );
}

#[test]
fn variables_and_lookups() {
    table(
        &customer(),
        &[
            ("{{ customer.address.city }}", "London"),
            ("{{ customer.address[\"zip code\"] }}", "N1"),
            ("{{ customer['address'][key] }}", "London"),
            ("{{ customer.tags[0] }}/{{ customer.tags[-1] }}/{{ customer.tags[i] }}", "vip/beta/beta"),
            ("{{ customer.tags.size }} {{ customer.tags.first }} {{ customer.tags.last }}", "2 vip beta"),
            ("{{ customer.first_name.size }} {{ customer.address.size }}", "3 2"),
            ("{{ products[1].title }} {{ products.last.price }}", "Tea 30"),
            ("{{ customer.tags }}", "vipbeta"),
            ("{{ customer.nickname }}|{{ customer.active }}|{{ customer.orders }}", "|false|3"),
            ("{{ customer.missing.deeper }}|{{ customer.tags[9] }}|{{ customer.first_name.nope }}", "||"),
            ("{{ }}", ""),
        ],
    );
}

#[test]
fn literals() {
    table(
        &json!({}),
        &[
            (
                "{{ 'single' }} {{ \"double\" }} {{ 42 }} {{ -1.5 }} {{ true }} {{ false }}",
                "single double 42 -1.5 true false",
            ),
            ("[{{ nil }}][{{ empty }}][{{ blank }}]", "[][][]"),
            ("{{ 12345678901234567890 }}", "1.2345678901234567e+19"),
        ],
    );
}

#[test]
fn whitespace_control() {
    let vars = json!({ "items": [1, 2] });
    table(
        &vars,
        &[
            ("a  {{- 'b' -}}  c", "abc"),
            (
                "<ul>\n  {%- for i in items %}\n  <li>{{ i }}</li>\n  {%- endfor %}\n</ul>",
                "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>",
            ),
            ("{% if true -%}\n  yes\n{%- endif %}", "yes"),
            ("{% assign x = 1 %}\n{{ x }}", "\n1"),
            ("{%- assign x = 1 -%}\n{{ x }}", "1"),
        ],
    );
}

#[test]
fn if_elsif_else() {
    table(
        &customer(),
        &[
            (
                "{% if customer.plan == 'pro' %}pro{% elsif customer.plan == 'free' %}free{% else %}other{% endif %}",
                "pro",
            ),
            ("{% if customer.plan == 'free' %}free{% elsif customer.orders >= 3 %}loyal{% endif %}", "loyal"),
            ("{% if customer.plan != 'pro' %}x{% else %}y{% endif %}", "y"),
            ("{% if customer.plan <> 'pro' %}x{% else %}y{% endif %}", "y"),
            ("{% if customer.orders < 4 and customer.orders > 2 %}3{% endif %}", "3"),
            ("{% if customer.orders <= 3 %}a{% endif %}{% if customer.orders >= 4 %}b{% endif %}", "a"),
            ("{% if customer.tags contains 'vip' %}vip{% endif %}", "vip"),
            ("{% if customer.first_name contains 'd' %}d{% endif %}", "d"),
            ("{% if customer.address contains 'city' %}has city{% endif %}", "has city"),
            ("{% if customer.nickname %}nick{% else %}no nick{% endif %}", "no nick"),
            ("{% if customer.active %}on{% else %}off{% endif %}", "off"),
            ("{% if customer.missing %}m{% else %}none{% endif %}", "none"),
            // Liquid truthiness: 0, "" and [] are true.
            ("{% if 0 %}a{% endif %}{% if '' %}b{% endif %}{% if empty_list %}c{% endif %}", "abc"),
            // Numbers held as strings compare as numbers against numbers.
            ("{% if customer.total_spent > 50 %}big{% endif %}", "big"),
            ("{% if customer.total_spent == 149 %}eq{% endif %}", "eq"),
            ("{% if '10' < '9' %}strings{% endif %}", "strings"),
            ("{% if customer.first_name > 5 %}never{% else %}unordered{% endif %}", "unordered"),
            ("{% if customer.tags == empty %}e{% else %}ne{% endif %}", "ne"),
            ("{% if empty_list == empty %}e{% endif %}{% if blank_text == blank %}b{% endif %}", "eb"),
            ("{% if customer.nickname == blank %}b{% endif %}{% if customer.nickname == empty %}e{% endif %}", "b"),
            ("{% if empty_list != empty %}x{% else %}y{% endif %}", "y"),
            ("{% if customer.tags == customer.tags %}same{% endif %}", "same"),
            ("{% if nil == nil %}nn{% endif %}{% if customer.missing == nil %}mn{% endif %}", "nnmn"),
        ],
    );
}

#[test]
fn and_or_evaluate_right_to_left() {
    table(
        &json!({}),
        &[
            // true or (false and false)
            ("{% if true or false and false %}t{% else %}f{% endif %}", "t"),
            // false and (false or true): left-to-right would give true
            ("{% if false and false or true %}t{% else %}f{% endif %}", "f"),
            ("{% if true and true and true %}t{% endif %}", "t"),
            ("{% if false or false or true %}t{% endif %}", "t"),
        ],
    );
}

#[test]
fn unless() {
    table(
        &customer(),
        &[
            ("{% unless customer.plan == 'free' %}paid{% endunless %}", "paid"),
            ("{% unless customer.plan == 'pro' %}x{% else %}pro{% endunless %}", "pro"),
            ("{% unless customer.active %}inactive{% endunless %}", "inactive"),
            ("{% unless true %}a{% elsif true %}b{% endunless %}", "b"),
        ],
    );
}

#[test]
fn case_when() {
    let template = "{% case customer.plan %}\n  {% when 'free' %}F{% when 'pro', 'team' %}P{% when 'x' or 'y' %}XY{% else %}?{% endcase %}";
    for (plan, want) in [("free", "F"), ("pro", "P"), ("team", "P"), ("y", "XY"), ("gold", "?")] {
        assert_eq!(text(template, &json!({"customer": {"plan": plan}})), want, "{plan}");
    }
    table(
        &customer(),
        &[
            ("{% case customer.orders %}{% when 3 %}three{% endcase %}", "three"),
            ("{% case customer.orders %}{% when '3' %}three{% endcase %}", "three"),
            ("{% case empty_list %}{% when empty %}none{% endcase %}", "none"),
            ("{% case customer.missing %}{% when nil %}nil{% else %}?{% endcase %}", "nil"),
            ("{% case 1 %}{% when 2 %}two{% endcase %}", ""),
        ],
    );
}

#[test]
fn for_loops() {
    table(
        &customer(),
        &[
            ("{% for p in products %}{{ p.title }},{% endfor %}", "Mug,Tea,Pot,"),
            ("{% for p in products limit: 2 %}{{ p.title }}{% endfor %}", "MugTea"),
            ("{% for p in products offset: 1 %}{{ p.title }}{% endfor %}", "TeaPot"),
            ("{% for p in products limit: 1 offset: 1 %}{{ p.title }}{% endfor %}", "Tea"),
            ("{% for p in products reversed %}{{ p.title }}{% endfor %}", "PotTeaMug"),
            // Limit and offset first, then reversed (as in Liquid).
            ("{% for p in products reversed limit: 2 %}{{ p.title }}{% endfor %}", "TeaMug"),
            ("{% for i in (1..5) %}{{ i }}{% endfor %}", "12345"),
            ("{% for i in (1..customer.orders) %}{{ i }}{% endfor %}", "123"),
            ("{% for i in (3..1) %}{{ i }}{% else %}none{% endfor %}", "none"),
            ("{% for x in empty_list %}{{ x }}{% else %}empty{% endfor %}", "empty"),
            ("{% for x in customer.missing %}{{ x }}{% else %}missing{% endfor %}", "missing"),
            ("{% for x in customer.first_name %}[{{ x }}]{% endfor %}", "[Ada]"),
            ("{% for pair in customer.address %}{{ pair[0] }}={{ pair[1] }};{% endfor %}", "city=London;zip code=N1;"),
            (
                "{% for p in products %}{{ forloop.index }}{{ forloop.index0 }}{{ forloop.rindex }}{{ forloop.rindex0 }}\
             {% if forloop.first %}F{% endif %}{% if forloop.last %}L{% endif %}{{ forloop.length }} {% endfor %}",
                "1032F3 21213 3210L3 ",
            ),
            ("{% for p in products %}{% if p.price > 20 %}{% break %}{% endif %}{{ p.title }}{% endfor %}", "MugTea"),
            (
                "{% for p in products %}{% if p.price < 10 %}{% continue %}{% endif %}{{ p.title }}{% endfor %}",
                "MugPot",
            ),
            (
                "{% for a in (1..2) %}{% for b in (1..3) %}{% if b == 2 %}{% break %}{% endif %}{{ a }}{{ b }} {% endfor %}{% endfor %}",
                "11 21 ",
            ),
            (
                "{% for i in (1..2) %}{% for j in (1..2) %}{{ forloop.index }}{% endfor %}{{ forloop.index }}|{% endfor %}",
                "121|122|",
            ),
            ("{% for p in products %}{% endfor %}{{ p.title }}", ""),
            ("{% for tag in customer.tags %}{% assign last = tag %}{% endfor %}{{ last }}", "beta"),
            ("{% assign n = 2 %}{% for p in products limit: n %}{{ p.price }}{% endfor %}", "125"),
        ],
    );
}

#[test]
fn assign_and_capture() {
    table(
        &customer(),
        &[
            ("{% assign name = customer.first_name | upcase %}{{ name }}", "ADA"),
            (
                "{% assign total = 0 %}{% for p in products %}{% assign total = total | plus: p.price %}{% endfor %}{{ total }}",
                "47",
            ),
            ("{% assign list = 'a,b,c' | split: ',' %}{{ list.size }}{{ list[1] }}", "3b"),
            (
                "{% capture greeting %}Hi {{ customer.first_name }}!{% endcapture %}{{ greeting }} {{ greeting.size }}",
                "Hi Ada! 7",
            ),
            ("{% capture 'quoted' %}q{% endcapture %}{{ quoted }}", "q"),
            ("{% assign first_name = 'Bob' %}{{ first_name }}", "Bob"),
            ("{% assign r = (1..3) %}{{ r | join: '-' }}", "1-2-3"),
            ("{% echo customer.first_name | downcase %}", "ada"),
        ],
    );
}

#[test]
fn raw_and_comments() {
    table(
        &customer(),
        &[
            ("{% raw %}{{ customer.first_name }} {% if %}{% endraw %}", "{{ customer.first_name }} {% if %}"),
            ("a{% comment %} {{ customer.first_name }} {% if x %} {% endcomment %}b", "ab"),
            ("a{% comment %}{% comment %}nested{% endcomment %}still{% endcomment %}b", "ab"),
            ("a{% # an inline comment %}b", "ab"),
            ("{% raw %}{{ x }}{% endraw %}{{ customer.first_name }}", "{{ x }}Ada"),
        ],
    );
}
