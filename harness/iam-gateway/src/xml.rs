//! Reading the few fields the gateway needs from awsQuery XML responses.

use quick_xml::{
    Reader,
    escape::resolve_predefined_entity,
    events::{BytesRef, Event},
};

/// Every element's text, keyed by its path of local names (`AssumeRoleResponse/AssumeRoleResult/...`).
///
/// Entity and character references are resolved. `None` if the document is
/// not well-formed XML.
pub fn element_texts(xml: &str) -> Option<Vec<(String, String)>> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut out = Vec::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                text.clear();
            }
            Event::End(_) => {
                if !text.is_empty() {
                    out.push((path.join("/"), std::mem::take(&mut text)));
                }
                path.pop();
            }
            Event::Text(t) => text.push_str(&t.decode().ok()?),
            Event::CData(t) => text.push_str(&t.decode().ok()?),
            Event::GeneralRef(r) => text.push_str(&resolve_reference(&r)?),
            Event::Eof => break,
            _ => {}
        }
    }
    path.is_empty().then_some(out)
}

fn resolve_reference(reference: &BytesRef<'_>) -> Option<String> {
    if let Some(c) = reference.resolve_char_ref().ok()? {
        return Some(c.to_string());
    }
    let name = reference.decode().ok()?;
    resolve_predefined_entity(&name).map(str::to_owned)
}

/// The text of the first element whose path ends with `suffix` (e.g. `AssumedRoleUser/Arn`).
pub fn find<'a>(texts: &'a [(String, String)], suffix: &str) -> Option<&'a str> {
    texts
        .iter()
        .find(|(path, _)| path == suffix || path.ends_with(&format!("/{suffix}")))
        .map(|(_, text)| text.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_with_references_are_resolved() {
        let texts = element_texts(
            "<?xml version='1.0'?><A xmlns=\"x\"><B><C>a &amp; b &#x41;</C></B><D /><E>e</E></A>",
        )
        .expect("well-formed");
        assert_eq!(find(&texts, "B/C"), Some("a & b A"));
        assert_eq!(find(&texts, "E"), Some("e"));
        assert_eq!(find(&texts, "D"), None);
        assert_eq!(find(&texts, "C/B"), None);
    }

    #[test]
    fn malformed_documents_are_rejected() {
        assert_eq!(element_texts("<A><B></A>"), None);
        assert_eq!(element_texts("<A>"), None);
    }
}
