//! The checklist `wisegate check` prints ([`crate::check`], and its `--online` part
//! [`crate::check_online`]): one line per thing checked, `ok`, `warn` or `FAIL`, and
//! the number of failures.

use std::fmt::Write as _;

/// The checklist being written.
#[derive(Default)]
pub struct Checklist {
    pub text: String,
    pub failures: usize,
}

impl Checklist {
    /// A line that passed.
    pub(crate) fn ok(&mut self, what: impl AsRef<str>) {
        let _ = writeln!(self.text, "  ok    {}", what.as_ref());
    }

    /// A line to look at that does not fail the check.
    pub(crate) fn warn(&mut self, what: impl AsRef<str>) {
        let _ = writeln!(self.text, "  warn  {}", what.as_ref());
    }

    /// A line that fails the check.
    pub(crate) fn fail(&mut self, what: impl AsRef<str>) {
        self.failures += 1;
        let _ = writeln!(self.text, "  FAIL  {}", what.as_ref());
    }

    /// `ok`'s line for a success, the error as a failure; the value when there is one.
    pub(crate) fn result<T, E: std::fmt::Display>(
        &mut self,
        result: Result<T, E>,
        ok: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        match result {
            Ok(value) => {
                self.ok(ok(&value));
                Some(value)
            }
            Err(error) => {
                self.fail(error.to_string());
                None
            }
        }
    }
}
