//! Telling a person's open from a machine's, by the request's `User-Agent` (the one
//! signal every fetch carries; the proxies' IP ranges change and are not all published).
//!
//! A fetch is a machine's when its User-Agent:
//!
//! - is missing or empty (mail clients and browsers always send one);
//! - is exactly `Mozilla/5.0`: Apple Mail Privacy Protection, which fetches every remote image
//!   of a message through Apple's relays when it is delivered, whether or not it is read,
//!   sends that and nothing more;
//! - contains `GoogleImageProxy` (Gmail's image proxy, `… (via ggpht.com GoogleImageProxy)`,
//!   which fetches on delivery as well as on open) or `YahooMailProxy`;
//! - names a crawler, a link previewer or a mail security scanner that follows links before
//!   the person does: `bot/`, `bot;`, `bot)`, `crawler`, `spider`, `facebookexternalhit`,
//!   `preview`, `linkexpanding`, `barracuda`, `mimecast`, `proofpoint`;
//! - names an HTTP library rather than a browser: `curl/`, `wget/`, `python-requests`,
//!   `python-urllib`, `go-http-client`, `libwww-perl`, `java/`.
//!
//! All comparisons ignore case. Such opens are recorded and counted apart; a person reading
//! the message in Apple Mail or Gmail is then counted as a machine too, which is the price of
//! not counting every delivery as a read. Clicks are not classified (see `endpoints`).

/// Substrings (lower case) of the User-Agents of machines.
const MACHINE_AGENTS: [&str; 20] = [
    "googleimageproxy",
    "yahoomailproxy",
    "bot/",
    "bot;",
    "bot)",
    "crawler",
    "spider",
    "facebookexternalhit",
    "preview",
    "linkexpanding",
    "barracuda",
    "mimecast",
    "proofpoint",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "libwww-perl",
    "java/",
];

/// Whether a fetch with this User-Agent is a machine's rather than a person's.
pub fn is_machine(user_agent: Option<&str>) -> bool {
    let agent = user_agent.map(str::trim).unwrap_or_default();
    if agent.is_empty() || agent == "Mozilla/5.0" {
        return true;
    }
    let agent = agent.to_ascii_lowercase();
    MACHINE_AGENTS.iter().any(|needle| agent.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_and_scanners_are_machines_and_mail_clients_are_not() {
        let machines = [
            None,
            Some(""),
            Some("Mozilla/5.0"),
            Some("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"),
            Some("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"),
            Some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
            Some("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"),
            Some("facebookexternalhit/1.1"),
            Some("curl/8.5.0"),
            Some("python-requests/2.31"),
        ];
        for agent in machines {
            assert!(is_machine(agent), "{agent:?}");
        }
        let people = [
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
            "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.0",
            "Mozilla/5.0 (Linux; Android 13; CUBOT X30) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
        ];
        for agent in people {
            assert!(!is_machine(Some(agent)), "{agent:?}");
        }
    }
}
