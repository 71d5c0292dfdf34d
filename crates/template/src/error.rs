//! The two ways a template fails: it does not parse (at save time, with a position), or one
//! render exceeded its [`Limits`](crate::Limits).

/// A template that does not parse. `Display` gives "line 3, column 14: unknown filter `upcse`".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct CompileError {
    /// 1-based line of the problem in the template source.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
    /// What is wrong, for people; it names the offending tag, filter or character.
    pub message: String,
}

/// A render stopped because the template did too much; the data cannot cause anything else.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    #[error(
        "the template needed more than {limit} steps (loops, tags and filters): \
         is a loop much longer than intended?"
    )]
    StepBudgetExceeded { limit: u64 },
    #[error("the template produced more than {limit} bytes of output (or built a value that large)")]
    OutputTooLarge { limit: usize },
}
