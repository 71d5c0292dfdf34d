//! The HTML of a tracked message, made as it is composed for a relay: every `http(s)` link
//! goes through the signed click redirect, and an open pixel sits at the end of the body.
//!
//! An HTML rewriter (`lol_html`, a streaming tokenizer that only touches what a selector
//! matches and copies everything else byte for byte) rather than patterns over the text: an
//! `href` can be quoted either way or not at all, hold entities (`&amp;`), or sit inside a
//! comment or a `<script>` where it is no link.
//!
//! Left as they are: links that are not absolute `http`/`https` URLs (`mailto:`, `tel:`,
//! anchors, relative links, which have no base in an email), Herald's own unsubscribe and
//! tracking links (the unsubscribe link must work without a redirect, and mail clients show
//! it), and links longer than [`MAX_URL_LEN`]. The plain-text part is not rewritten: its links
//! are read and typed by people, and a long opaque redirect there costs more trust than the
//! few clicks it would count.

use std::cell::Cell;
use std::rc::Rc;

use herald_domain::{MessageId, Tracking, WorkspaceId};
use lol_html::errors::RewritingError;
use lol_html::html_content::ContentType;
use lol_html::{RewriteStrSettings, element, end_tag, rewrite_str};

use super::token::{self, MAX_URL_LEN};

/// What a message's tracked links are made from.
pub struct Links<'a> {
    /// Herald's public URL, without a trailing `/`.
    pub public_url: &'a str,
    /// The workspace's secret.
    pub secret: &'a [u8],
    pub workspace: WorkspaceId,
    pub message: MessageId,
    /// The contact's unsubscribe link, as rendered into this message.
    pub unsubscribe_url: &'a str,
}

impl std::fmt::Debug for Links<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("workspace", &self.workspace)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl Links<'_> {
    /// Where the open pixel is fetched from.
    pub fn open_url(&self) -> String {
        format!("{}/t/o/{}", self.public_url, token::open(self.secret, self.workspace, self.message))
    }

    /// Where a link to `url` points instead.
    pub fn click_url(&self, url: &str) -> String {
        format!("{}/t/c/{}", self.public_url, token::click(self.secret, self.workspace, self.message, url))
    }

    /// The URL a link's `href` (entities decoded) is tracked as, normalised; `None` to leave
    /// it as it is.
    fn trackable(&self, href: &str) -> Option<String> {
        let href = href.trim();
        if href == self.unsubscribe_url.trim() {
            return None;
        }
        let url = url::Url::parse(href).ok().filter(|u| matches!(u.scheme(), "http" | "https"))?;
        let ours = |path: &str| url.as_str().starts_with(&format!("{}{path}", self.public_url));
        if ours("/unsubscribe/") || ours("/t/") {
            return None;
        }
        Some(url.as_str().to_owned()).filter(|u| u.len() <= MAX_URL_LEN)
    }
}

/// `html` with its links and open pixel as `tracking` asks.
pub fn rewrite(html: &str, tracking: Tracking, links: &Links<'_>) -> Result<String, RewritingError> {
    if tracking == Tracking::default() {
        return Ok(html.to_owned());
    }
    let pixel =
        format!(r#"<img src="{}" width="1" height="1" alt="" style="display:block;border:0">"#, links.open_url());
    // Set once the pixel is placed before `</body>`; a document without one gets it appended.
    let placed = Rc::new(Cell::new(false));
    let mut settings = RewriteStrSettings::new();
    if tracking.clicks {
        settings = settings.append_element_content_handler(element!("a[href]", |el| {
            if let Some(url) =
                el.get_attribute("href").and_then(|href| links.trackable(&herald_template::decode_entities(&href)))
            {
                el.set_attribute("href", &links.click_url(&url))?;
            }
            Ok(())
        }));
    }
    if tracking.opens {
        settings = settings.append_element_content_handler(element!("body", |el| {
            let (pixel, placed) = (pixel.clone(), placed.clone());
            el.on_end_tag(end_tag!(move |end| {
                if !placed.replace(true) {
                    end.before(&pixel, ContentType::Html);
                }
                Ok(())
            }))?;
            Ok(())
        }));
    }
    let mut out = rewrite_str(html, settings)?;
    if tracking.opens && !placed.get() {
        out.push_str(&pixel);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::email::tracking::token::Claim;
    use uuid::Uuid;

    const PUBLIC: &str = "https://herald.test";
    const UNSUBSCRIBE: &str = "https://herald.test/unsubscribe/AAAA";

    fn links() -> Links<'static> {
        Links {
            public_url: PUBLIC,
            secret: b"k",
            workspace: WorkspaceId::from_uuid(Uuid::from_u128(1)),
            message: MessageId::from_uuid(Uuid::from_u128(2)),
            unsubscribe_url: UNSUBSCRIBE,
        }
    }

    fn clicks(html: &str) -> String {
        rewrite(html, Tracking { opens: false, clicks: true }, &links()).expect("rewrites")
    }

    /// The URL a tracked `href` leads to.
    fn target(href: &str) -> String {
        let token = href.strip_prefix("https://herald.test/t/c/").expect("tracked");
        let claim = Claim::click(token).expect("a click token");
        assert!(claim.verify(b"k"));
        claim.url.expect("url")
    }

    fn hrefs(html: &str) -> Vec<String> {
        html.split("href=\"").skip(1).map(|s| s[..s.find('"').expect("quote")].to_owned()).collect()
    }

    #[test]
    fn http_links_go_through_the_redirect_to_where_they_went() {
        let out = clicks(
            r#"<p><a href="https://acme.test/pricing">Pricing</a> <a class=x href='http://acme.test/a b'>b</a></p>"#,
        );
        let hrefs = hrefs(&out);
        assert_eq!(hrefs.len(), 2, "{out}");
        assert_eq!(target(&hrefs[0]), "https://acme.test/pricing");
        assert_eq!(target(&hrefs[1]), "http://acme.test/a%20b");
        assert!(out.contains(">Pricing</a>") && out.contains("class=x"), "{out}");
    }

    #[test]
    fn entities_in_hrefs_are_decoded_before_signing() {
        let out = clicks(r#"<a href="https://acme.test/?a=1&amp;b=2&#38;c=3">x</a>"#);
        assert_eq!(target(&hrefs(&out)[0]), "https://acme.test/?a=1&b=2&c=3");
    }

    #[test]
    fn unsubscribe_mailto_relative_and_other_links_are_left_alone() {
        let html = format!(
            r##"<a href="{UNSUBSCRIBE}">Unsubscribe</a><a href="mailto:hi@acme.test">Mail</a><a href="tel:+1">Call</a><a href="/relative">R</a><a href="#top">Top</a><a href="javascript:alert(1)">J</a><a href="https://herald.test/unsubscribe/BBBB">Other</a><a>None</a><a href="https://herald.test/t/c/abc">Already</a>"##
        );
        assert_eq!(clicks(&html), html);
    }

    #[test]
    fn only_hrefs_of_links_are_rewritten() {
        let html = r#"<img src="https://acme.test/logo.png"><link href="https://acme.test/x.css"><!-- <a href="https://acme.test/c"> --><p>https://acme.test/text</p><script>var a = '<a href="https://acme.test/s">';</script>"#;
        assert_eq!(clicks(html), html);
    }

    #[test]
    fn overlong_links_are_left_alone() {
        let long = format!("https://acme.test/{}", "a".repeat(MAX_URL_LEN));
        let html = format!(r#"<a href="{long}">x</a>"#);
        assert_eq!(clicks(&html), html);
    }

    #[test]
    fn the_pixel_goes_before_the_end_of_the_body_or_at_the_end() {
        let opens = Tracking { opens: true, clicks: false };
        let out = rewrite("<html><body><p>Hi</p></body></html>", opens, &links()).expect("rewrites");
        let pixel =
            format!(r#"<img src="{}" width="1" height="1" alt="" style="display:block;border:0">"#, links().open_url());
        assert_eq!(out, format!("<html><body><p>Hi</p>{pixel}</body></html>"));
        let token = links().open_url().rsplit('/').next().expect("token").to_owned();
        assert!(Claim::open(&token).expect("an open token").verify(b"k"));
        assert_eq!(rewrite("<p>Hi</p>", opens, &links()).expect("rewrites"), format!("<p>Hi</p>{pixel}"));
        // Links stay as they are when only opens are tracked.
        let link = r#"<a href="https://acme.test/">x</a>"#;
        assert_eq!(rewrite(link, opens, &links()).expect("rewrites"), format!("{link}{pixel}"));
    }

    #[test]
    fn nothing_changes_when_nothing_is_tracked() {
        let html = r#"<body><a href="https://acme.test/">x</a></body>"#;
        assert_eq!(rewrite(html, Tracking::default(), &links()).expect("rewrites"), html);
    }
}
