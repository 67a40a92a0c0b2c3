//! Keeps panics inside Rust: a panic in a call becomes [`FacePayError::Internal`] (uniffi would otherwise raise
//! an untyped internal exception in Kotlin and Swift).

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use facepay_core::flow::FacePayError;

/// Runs `f`, turning a panic into [`FacePayError::Internal`].
pub fn guard<T>(f: impl FnOnce() -> Result<T, FacePayError>) -> Result<T, FacePayError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(internal(p)))
}

/// Awaits `f`, turning a panic in any poll into [`FacePayError::Internal`].
pub async fn guard_async<T>(
    f: impl Future<Output = Result<T, FacePayError>>,
) -> Result<T, FacePayError> {
    CatchUnwind(Box::pin(f)).await
}

/// A future that catches a panic of the future it wraps.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<T, F: Future<Output = Result<T, FacePayError>>> Future for CatchUnwind<F> {
    type Output = Result<T, FacePayError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        catch_unwind(AssertUnwindSafe(move || inner.poll(cx)))
            .unwrap_or_else(|p| Poll::Ready(Err(internal(p))))
    }
}

fn internal(payload: Box<dyn Any + Send>) -> FacePayError {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    FacePayError::Internal {
        detail: format!("panic in the FacePay core: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_internal_errors() {
        let r: Result<(), _> = guard(|| panic!("boom"));
        assert!(matches!(r, Err(FacePayError::Internal { detail }) if detail.contains("boom")));
        assert_eq!(guard(|| Ok(7)).unwrap(), 7);
        let mut f = Box::pin(guard_async(async {
            if true { panic!("async boom") } else { Ok(()) }
        }));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(rt) = f.as_mut().poll(&mut cx) else {
            panic!("ready on its first poll")
        };
        assert!(
            matches!(rt, Err(FacePayError::Internal { detail }) if detail.contains("async boom"))
        );
    }
}
