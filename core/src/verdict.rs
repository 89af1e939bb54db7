//! Verdicts: what a limiter says about one request or one slot.

/// The verdict of a rate check, one-to-one with Kamailio's `pl_check` codes.
#[must_use = "a verdict that is not looked at limits nothing"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum Verdict {
    /// Let the request through (Kamailio 1).
    Pass = 1,
    /// Refuse the request (Kamailio -1).
    Drop = -1,
    /// Passed by a NOP pipe, which limits nothing (Kamailio 2).
    PassNop = 2,
}

impl Verdict {
    /// Kamailio's return code: 1 pass, -1 drop, 2 pass with NOP.
    pub const fn code(self) -> i32 {
        self as i8 as i32
    }

    /// True for [`Verdict::Pass`] and [`Verdict::PassNop`].
    pub const fn passed(self) -> bool {
        !matches!(self, Verdict::Drop)
    }

    pub(crate) const fn from_pass(pass: bool) -> Verdict {
        if pass {
            Verdict::Pass
        } else {
            Verdict::Drop
        }
    }
}

/// The verdict of a slot acquisition (FreeSWITCH concurrent limit, app_rpt links).
#[must_use = "an acquired slot must be released; a refused one must be acted on"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum SlotVerdict {
    /// A slot was taken; release it when the call or link ends (code 1).
    Acquired = 1,
    /// No slot was free; nothing was taken (code -1).
    Refused = -1,
}

impl SlotVerdict {
    /// The code used at the C boundary: 1 acquired, -1 refused.
    pub const fn code(self) -> i32 {
        self as i8 as i32
    }
}

/// What a plain counting release did.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Release {
    /// One slot was given back.
    Released,
    /// The count was already zero: nothing was given back, and the release
    /// was counted as unmatched. The count never goes below zero.
    Unmatched,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_kamailios() {
        assert_eq!(Verdict::Pass.code(), 1);
        assert_eq!(Verdict::Drop.code(), -1);
        assert_eq!(Verdict::PassNop.code(), 2);
        assert_eq!(SlotVerdict::Acquired.code(), 1);
        assert_eq!(SlotVerdict::Refused.code(), -1);
        assert!(Verdict::Pass.passed() && Verdict::PassNop.passed());
        assert!(!Verdict::Drop.passed());
        assert_eq!(Verdict::from_pass(true), Verdict::Pass);
        assert_eq!(Verdict::from_pass(false), Verdict::Drop);
    }
}
