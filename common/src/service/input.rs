//! What a use case takes: its typed command, or a face's request that reads into one.

use crate::error::Result;

/// A use case's command `T`, or what a face reads it from (REST: a JSON body). A use case
/// checks the caller's permission first and reads its command after, so a caller without the
/// permission is refused with 403 whatever the body holds, and learns nothing of its problems.
/// GraphQL's resolvers build the command from their typed arguments and pass it as it is.
pub trait Input<T> {
    fn read(self) -> Result<T>;
}

impl<T> Input<T> for T {
    fn read(self) -> Result<T> {
        Ok(self)
    }
}
