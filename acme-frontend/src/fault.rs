//! Fault points for crash tests: a debug build aborts at the point named by
//! the `AKAMU_FAULT_POINT` environment variable, as a `kill -9` landing
//! exactly there would (no destructor runs, no commit happens). Release
//! builds compile every point to nothing.

/// After the signer's answer and before its certificate is committed.
pub const AFTER_SIGN_BEFORE_COMMIT: &str = "frontend-after-sign-before-commit";

/// Aborts the process if `AKAMU_FAULT_POINT` names `point` (debug builds).
pub fn point(point: &'static str) {
    #[cfg(debug_assertions)]
    {
        static ARMED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let armed = ARMED.get_or_init(|| std::env::var("AKAMU_FAULT_POINT").ok());
        if armed.as_deref() == Some(point) {
            tracing::error!(target: "frontend", point, "fault point reached: aborting");
            std::process::abort();
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}
