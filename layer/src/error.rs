//! Hook errors and the errno each one becomes.

use mirrord_protocol::{CodecError, RemoteError};

#[derive(Debug)]
pub enum HookError {
    /// The agent ran the call and it failed: its errno is what the program sees.
    Remote(RemoteError),
    /// The intproxy connection is gone (the intproxy or the agent exited).
    ProxyLost(String),
    /// No answer within the request timeout.
    Timeout,
    /// The intproxy answered something that does not fit the request.
    UnexpectedResponse(&'static str),
    /// A path or argument the layer cannot pass on (e.g. too long).
    BadArgument(i32),
    /// A bug in the layer; the call fails rather than crash the program.
    Internal(&'static str),
}

impl HookError {
    /// The errno the program sees. No catch-all arm: a new variant does not
    /// compile until it has an errno.
    pub fn errno(&self) -> i32 {
        match self {
            HookError::Remote(e) => e.errno,
            HookError::ProxyLost(_) => libc::EIO,
            HookError::Timeout => libc::ETIMEDOUT,
            HookError::UnexpectedResponse(_) => libc::EIO,
            HookError::BadArgument(errno) => *errno,
            HookError::Internal(_) => libc::EIO,
        }
    }

    /// Sets `errno` and returns `-1`, for hooks returning `c_int`/`ssize_t`.
    pub fn fail<T: From<i8>>(self) -> T {
        set_errno(self.errno());
        T::from(-1)
    }
}

impl From<RemoteError> for HookError {
    fn from(e: RemoteError) -> Self {
        HookError::Remote(e)
    }
}

impl From<CodecError> for HookError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                HookError::Timeout
            }
            other => HookError::ProxyLost(other.to_string()),
        }
    }
}

pub fn set_errno(errno: i32) {
    // SAFETY: `__errno_location` returns this thread's errno slot.
    unsafe { *libc::__errno_location() = errno };
}

pub fn errno() -> i32 {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() }
}
