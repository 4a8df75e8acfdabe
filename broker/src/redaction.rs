//! Redaction of an echoed credential from what an upstream answers: every form the value can
//! take once an upstream has quoted, encoded or escaped it, found in whole bodies and headers
//! and in streamed bodies whose chunks may split a form.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::integrations::Inject;
use crate::secret::{ExposeSecret, SecretString};

/// Redaction over a stream: holds back the last `longest form - 1` bytes of each chunk, where a
/// form could start and continue in the next chunk, so memory stays bounded by one chunk.
pub(crate) struct Redactor {
    forms: Vec<Vec<u8>>,
    keep: usize,
    pending: Vec<u8>,
    pub(crate) hit: bool,
}

impl Redactor {
    pub(crate) fn new(forms: Vec<Vec<u8>>) -> Self {
        let keep = forms
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(1)
            .saturating_sub(1);
        Redactor {
            forms,
            keep,
            pending: Vec::new(),
            hit: false,
        }
    }

    /// Takes a chunk; returns what is safe to pass on.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let safe = self.pending.len().saturating_sub(self.keep);
        let mut out = Vec::with_capacity(safe);
        let mut i = 0;
        'scan: while i < safe {
            for form in &self.forms {
                // A form that starts before `safe` ends within `pending`.
                if self.pending[i..].starts_with(form) {
                    out.extend_from_slice(REDACTED);
                    i += form.len();
                    self.hit = true;
                    continue 'scan;
                }
            }
            out.push(self.pending[i]);
            i += 1;
        }
        self.pending.drain(..i);
        out
    }

    /// Ends the stream: what was held back, redacted.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let (out, hit) = redact(&std::mem::take(&mut self.pending), &self.forms);
        self.hit |= hit;
        out
    }
}

const REDACTED: &[u8] = b"[REDACTED]";

/// The forms an echoed credential can take: as sent, URL-encoded (both space conventions),
/// JSON-escaped, and base64 (as a `basic` header carries it), longest first.
pub(crate) fn forms(credential: &SecretString, inject: &Inject) -> Vec<Vec<u8>> {
    let raw = credential.expose_secret();
    let form_encoded: String = url::form_urlencoded::byte_serialize(raw.as_bytes()).collect();
    let mut forms = vec![
        raw.as_bytes().to_vec(),
        form_encoded.replace('+', "%20").into_bytes(),
        form_encoded.into_bytes(),
    ];
    if let Ok(json) = serde_json::to_string(raw) {
        // Without the enclosing quotes, exactly one on each side.
        forms.push(json.as_bytes()[1..json.len() - 1].to_vec());
    }
    if matches!(inject, Inject::Basic) {
        forms.push(STANDARD.encode(raw).into_bytes());
    }
    forms.retain(|f| f.len() >= 4);
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
}

/// Replaces every occurrence of any form in `data`; says whether it replaced anything.
pub(crate) fn redact(data: &[u8], forms: &[Vec<u8>]) -> (Vec<u8>, bool) {
    const MARK: &[u8] = REDACTED;
    let Some(shortest) = forms.iter().map(Vec::len).min() else {
        return (data.to_vec(), false);
    };
    if data.len() < shortest {
        return (data.to_vec(), false);
    }
    let mut out = Vec::with_capacity(data.len());
    let mut hit = false;
    let mut i = 0;
    'scan: while i < data.len() {
        for form in forms {
            if data[i..].starts_with(form) {
                out.extend_from_slice(MARK);
                i += form.len();
                hit = true;
                continue 'scan;
            }
        }
        out.push(data[i]);
        i += 1;
    }
    (out, hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_forms_split_across_chunks() {
        let forms = forms(
            &SecretString::from("tok-abcdef".to_owned()),
            &Inject::Bearer,
        );
        let body = b"head tok-abcdef middle tok-abcdef tail";
        for size in 1..body.len() {
            let mut redactor = Redactor::new(forms.clone());
            let mut out = Vec::new();
            for chunk in body.chunks(size) {
                out.extend(redactor.push(chunk));
            }
            out.extend(redactor.finish());
            assert_eq!(
                out, b"head [REDACTED] middle [REDACTED] tail",
                "chunk size {size}"
            );
            assert!(redactor.hit);
        }
    }

    #[test]
    fn redacts_every_form_of_the_credential() {
        let secret = SecretString::from("k/y+z \"q\"".to_owned());
        let forms = forms(&secret, &Inject::Basic);
        let cases: [(&[u8], &[u8]); 6] = [
            (b"raw k/y+z \"q\" end", b"raw [REDACTED] end"),
            (b"form k%2Fy%2Bz+%22q%22 end", b"form [REDACTED] end"),
            (b"path k%2Fy%2Bz%20%22q%22 end", b"path [REDACTED] end"),
            (br#"json "k/y+z \"q\"" end"#, br#"json "[REDACTED]" end"#),
            (b"basic ay95K3ogInEi end", b"basic [REDACTED] end"),
            (b"nothing here", b"nothing here"),
        ];
        for (input, expected) in cases {
            let (out, _) = redact(input, &forms);
            assert_eq!(out, expected, "case {}", String::from_utf8_lossy(input));
        }
    }
}
