//! What the UI draws and says for each frame. The outline ([`Oval`]), the prompt ([`GuidanceState`]) and the
//! challenges are the core's own types (they derive uniffi's traits); [`Guidance`] is the one wrapper, because
//! the core's message key and text are `&'static str`.

pub use facepay_core::checkout::protocol::Challenge;
use facepay_core::liveness::{Guidance as CoreGuidance, GuidanceState, Oval};

/// The session's answer to one frame.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Guidance {
    /// Index of the frame this answers (0-based).
    pub frame_index: u64,
    /// The prompt.
    pub state: GuidanceState,
    /// The outline to draw: an ellipse centred at `(cx·W, cy·H)` with radii `(rx·W, ry·H)`; if the preview is
    /// mirrored and the pushed frames are not (or the other way round), use `1 − cx`.
    pub oval: Oval,
    /// Progress of the whole session, 0..1.
    pub progress: f32,
    /// Stable message key (`liveness.blink`, …): translate by key.
    pub message_key: String,
    /// English default text for the key.
    pub message: String,
    /// Whether the session is over (passed, failed or timed out).
    pub is_terminal: bool,
}

impl From<CoreGuidance> for Guidance {
    fn from(g: CoreGuidance) -> Self {
        Guidance {
            frame_index: g.frame_index,
            state: g.state,
            oval: g.oval,
            progress: g.progress,
            message_key: g.message_key.into(),
            message: g.message.into(),
            is_terminal: g.state.is_terminal(),
        }
    }
}
