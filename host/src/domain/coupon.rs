//! Unique coupon codes as they enter: a pool code ([`pool_code_problem`]) and a pattern
//! ([`CouponPattern`]) that generates one code per lead from a CSPRNG.
//!
//! Pattern syntax: literal characters from `A–Z a–z 0–9 - _ .`, and tokens `{A<n>}` (n random
//! characters from `A–Z 0–9`) and `{D<n>}` (n random digits), e.g. `VOLTA-{A6}` or
//! `BF{D4}-{A4}`. A pattern must hold at least [`MIN_RANDOM_CHARS`] random characters (so codes
//! cannot be guessed from each other: 36^6 ≈ 2.2 billion codes for `{A6}`), and its codes are
//! at most [`MAX_CODE_CHARS`] characters long.

use rand::Rng;

use super::words::stored_words;

stored_words! {
    /// Where a lead's unique coupon came from.
    CouponSource {
        /// A list of codes the producer uploaded.
        Pool = "pool",
        /// Made from the producer's pattern.
        Pattern = "pattern",
    }
}

/// The longest code, pool or generated (what checkout platforms commonly accept).
pub(crate) const MAX_CODE_CHARS: usize = 64;
/// The fewest random characters a pattern may have.
pub(crate) const MIN_RANDOM_CHARS: usize = 6;
/// The longest pattern as written.
pub const MAX_PATTERN_CHARS: usize = 100;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const DIGITS: &[u8] = b"0123456789";

/// The schema pattern of a pool code: what [`pool_code_problem`] accepts.
pub const POOL_CODE: &str = r"^[A-Za-z0-9._-]{1,64}$";

/// The schema pattern of a static code (`maxLength` 64 beside it): what [`static_code_problem`]
/// accepts — no white space, no control character.
pub(crate) const STATIC_CODE: &str = r"^[^\s\u0000-\u001f\u007f-\u009f]+$";

/// The schema pattern of a coupon pattern (`maxLength` [`MAX_PATTERN_CHARS`] beside it): the
/// syntax [`CouponPattern::parse`] reads. How many random characters it has and how long its
/// codes are the schema cannot say; the handler does.
pub(crate) const PATTERN_SYNTAX: &str = r"^([A-Za-z0-9._-]|\{[AD]0*([1-9]|[1-5][0-9]|6[0-4])\})*$";

/// What is wrong with a static code (the same for every lead), if anything: 1 to
/// [`MAX_CODE_CHARS`] characters, no white space or control characters.
pub(crate) fn static_code_problem(code: &str) -> Option<&'static str> {
    let bad = code.trim().is_empty()
        || code.chars().count() > MAX_CODE_CHARS
        || code.contains(|ch: char| ch.is_whitespace() || ch.is_control());
    bad.then_some("1 to 64 characters, no spaces")
}

/// Whether a character may appear in a code: letters, digits, `-`, `_` and `.` (no spaces,
/// quotes or markup, so a code is safe in a URL, an email and a CSV cell).
pub(crate) fn code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// What is wrong with a pool code, if anything.
pub(crate) fn pool_code_problem(code: &str) -> Option<String> {
    let chars = code.chars().count();
    if chars == 0 {
        Some("must not be empty".into())
    } else if chars > MAX_CODE_CHARS {
        Some(format!("must be at most {MAX_CODE_CHARS} characters (got {chars})"))
    } else {
        let bad = code.chars().find(|c| !code_char(*c))?;
        Some(format!("{bad:?} is not allowed: use letters, digits, '-', '_' or '.'"))
    }
}

/// One piece of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Alnum(usize),
    Digits(usize),
}

/// A parsed pattern (see the module doc for the syntax).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CouponPattern {
    text: String,
    pieces: Vec<Piece>,
}

impl CouponPattern {
    /// Parse a pattern, or say what is wrong with it.
    pub fn parse(text: &str) -> Result<CouponPattern, String> {
        if text.chars().count() > MAX_PATTERN_CHARS {
            return Err(format!("must be at most {MAX_PATTERN_CHARS} characters"));
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if c == '{' {
                let end = rest.find('}').ok_or("a '{' without its '}': tokens are {A<n>} or {D<n>}")?;
                let token = &rest[1..end];
                let (kind, count) = token.split_at(token.chars().next().map_or(0, char::len_utf8));
                let n: usize = count
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_CODE_CHARS).contains(n) && count.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| {
                        format!("{{{token}}} is not a token: use {{A<n>}} or {{D<n>}} with n from 1 to 64")
                    })?;
                let piece = match kind {
                    "A" => Piece::Alnum(n),
                    "D" => Piece::Digits(n),
                    _ => {
                        return Err(format!(
                            "{{{token}}} is not a token: use {{A<n>}} (letters and digits) or {{D<n>}} (digits)"
                        ));
                    }
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(piece);
                rest = &rest[end + 1..];
            } else if code_char(c) {
                literal.push(c);
                rest = &rest[c.len_utf8()..];
            } else {
                return Err(format!("{c:?} is not allowed: literal parts use letters, digits, '-', '_' or '.'"));
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        let random: usize = pieces
            .iter()
            .map(|p| match p {
                Piece::Alnum(n) | Piece::Digits(n) => *n,
                Piece::Literal(_) => 0,
            })
            .sum();
        if random < MIN_RANDOM_CHARS {
            return Err(format!(
                "needs at least {MIN_RANDOM_CHARS} random characters (e.g. VOLTA-{{A6}}) so codes cannot be guessed; it has {random}"
            ));
        }
        let length: usize = pieces
            .iter()
            .map(|p| match p {
                Piece::Alnum(n) | Piece::Digits(n) => *n,
                Piece::Literal(s) => s.chars().count(),
            })
            .sum();
        if length > MAX_CODE_CHARS {
            return Err(format!("its codes would be {length} characters: at most {MAX_CODE_CHARS}"));
        }
        Ok(CouponPattern { text: text.to_string(), pieces })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A fresh code from the operating system's CSPRNG (through `rand`'s thread generator,
    /// seeded from it and reseeded).
    pub fn generate(&self) -> String {
        self.generate_with(&mut rand::rng())
    }

    /// A code from `rng` (tests pass a seeded one).
    pub fn generate_with(&self, rng: &mut impl Rng) -> String {
        let mut code = String::new();
        for piece in &self.pieces {
            let (alphabet, n) = match piece {
                Piece::Literal(s) => {
                    code.push_str(s);
                    continue;
                }
                Piece::Alnum(n) => (ALNUM, *n),
                Piece::Digits(n) => (DIGITS, *n),
            };
            for _ in 0..n {
                code.push(char::from(alphabet[rng.random_range(0..alphabet.len())]));
            }
        }
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_generate_codes_of_their_shape() {
        let p = CouponPattern::parse("VOLTA-{A6}").expect("valid");
        for _ in 0..100 {
            let code = p.generate();
            assert_eq!(code.len(), 12, "{code}");
            assert!(code.starts_with("VOLTA-"));
            assert!(code[6..].bytes().all(|b| ALNUM.contains(&b)), "{code}");
            assert!(pool_code_problem(&code).is_none());
        }
        let p = CouponPattern::parse("BF{D4}-{A2}").expect("valid");
        let code = p.generate();
        assert!(code[2..6].bytes().all(|b| b.is_ascii_digit()) && &code[6..7] == "-", "{code}");
    }

    #[test]
    fn bad_patterns_say_why() {
        for (pattern, words) in [
            ("VOLTA", "at least 6 random"),
            ("VOLTA-{A5}", "at least 6 random"),
            ("V-{A6", "without its '}'"),
            ("V-{X6}", "not a token"),
            ("V-{A0}{A6}", "not a token"),
            ("V-{A+6}", "not a token"),
            ("V-{A}", "not a token"),
            ("VOLTA {A6}", "not allowed"),
            ("VOLTA-{A60}{D10}", "at most 64"),
            ("{Á6}", "not a token"),
        ] {
            let e = CouponPattern::parse(pattern).expect_err(pattern);
            assert!(e.contains(words), "{pattern}: {e}");
        }
        assert!(CouponPattern::parse(&"A".repeat(101)).is_err());
    }

    #[test]
    fn pool_codes_are_short_and_plain() {
        assert!(pool_code_problem("VOLTA-2026_a.1").is_none());
        assert!(pool_code_problem("").is_some());
        assert!(pool_code_problem(&"A".repeat(65)).is_some());
        assert!(pool_code_problem(&"A".repeat(64)).is_none());
        for bad in ["A B", "A\"B", "<b>", "ação", "A\nB"] {
            assert!(pool_code_problem(bad).is_some(), "{bad:?}");
        }
    }
}
