//! The signed payment payload (protocol `v2`): its types, its canonical byte encoding, the liveness challenges
//! derived from a nonce, and ECDSA P-256 signature verification. `docs/protocol.md` is the normative description;
//! its test vectors are checked against this code by the unit tests below.

use ring::digest;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use super::error::ProtocolError;
use super::wire::b64_32;

/// The protocol version: canonical format version 2 and the `v2` challenge derivation (the HTTP paths keep
/// their `/v1/` prefix: the endpoints and their JSON are unchanged).
pub const PROTOCOL_VERSION: &str = "v2";
/// The first four bytes of every canonical payload.
pub const PAYLOAD_MAGIC: [u8; 4] = *b"FPAY";
/// The canonical encoding's format version byte (follows the magic); version 1 payloads are refused.
pub const PAYLOAD_FORMAT_VERSION: u8 = 2;
/// Allowed byte length of merchant, order and device ids.
pub const ID_LEN: (usize, usize) = (1, 128);
/// Most challenges the evidence may list.
pub const MAX_CHALLENGES: usize = 16;
/// Most model version strings the evidence may list.
pub const MAX_MODEL_VERSIONS: usize = 16;
/// Allowed byte length of one model version string.
pub const MODEL_VERSION_LEN: (usize, usize) = (1, 128);
/// Domain-separation prefix hashed before the nonce when deriving challenges.
const CHALLENGE_DOMAIN: &[u8] = b"FacePay challenges v2";

/// The order the shopper is paying for, as the merchant created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRef {
    /// The merchant's id on the checkout server.
    pub merchant_id: String,
    /// The merchant's own order id (unique per merchant).
    pub order_id: String,
    /// Amount in the currency's minor units (cents for EUR).
    pub amount_minor: u64,
    /// ISO 4217 alphabetic code: three uppercase ASCII letters.
    pub currency: String,
    /// SHA-256 of the merchant's item list, as the merchant computed it (base64url on the wire).
    #[serde(with = "b64_32")]
    pub items_digest: [u8; 32],
}

/// One active liveness challenge the shopper performs in front of the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum Challenge {
    /// Close and reopen both eyes.
    Blink,
    /// Turn the head to the shopper's left.
    TurnLeft,
    /// Turn the head to the shopper's right.
    TurnRight,
    /// Tilt the head back (look up).
    LookUp,
    /// Tilt the head forward (look down).
    LookDown,
    /// Bring the face closer until it fills the larger outline the nonce placed, then move back.
    MoveCloser(CloserOutline),
}

/// The larger outline of a [`Challenge::MoveCloser`], relative to the session's normal outline: its height in
/// percent of the normal outline's, and its centre's offset in percent of the frame width and height (positive:
/// right, down). Bounds: [`CloserOutline::SCALE_PCT`], [`CloserOutline::MAX_DX_PCT`], [`CloserOutline::MAX_DY_PCT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct CloserOutline {
    /// Height of the larger outline, percent of the normal outline's height.
    pub scale_pct: u8,
    /// Horizontal offset of its centre, percent of the frame width.
    pub dx_pct: i8,
    /// Vertical offset of its centre, percent of the frame height.
    pub dy_pct: i8,
}

impl CloserOutline {
    /// Allowed `scale_pct` (inclusive).
    pub const SCALE_PCT: (u8, u8) = (125, 150);
    /// Largest |`dx_pct`|.
    pub const MAX_DX_PCT: i8 = 8;
    /// Largest |`dy_pct`|.
    pub const MAX_DY_PCT: i8 = 4;

    /// The outline the nonce digest's placement bytes choose: `scale = 125 + 5·(p[0] mod 6)`,
    /// `dx = 2·((p[1] mod 9) − 4)`, `dy = 2·((p[2] mod 5) − 2)`.
    fn from_digest(p: [u8; 3]) -> Self {
        Self {
            scale_pct: 125 + 5 * (p[0] % 6),
            dx_pct: 2 * ((p[1] % 9) as i8 - 4),
            dy_pct: 2 * ((p[2] % 5) as i8 - 2),
        }
    }

    /// Whether every field is within its bounds.
    pub fn is_valid(&self) -> bool {
        (Self::SCALE_PCT.0..=Self::SCALE_PCT.1).contains(&self.scale_pct)
            && self.dx_pct.unsigned_abs() <= Self::MAX_DX_PCT.unsigned_abs()
            && self.dy_pct.unsigned_abs() <= Self::MAX_DY_PCT.unsigned_abs()
    }
}

impl Default for CloserOutline {
    /// The smallest, centred larger outline (for lists written by hand, e.g. `move_closer` in a CLI flag).
    fn default() -> Self {
        Self {
            scale_pct: Self::SCALE_PCT.0,
            dx_pct: 0,
            dy_pct: 0,
        }
    }
}

/// The device's liveness conclusion for the capture session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LivenessVerdict {
    /// A live person performed the challenges.
    Live,
    /// A presentation attack was detected.
    Spoof,
    /// The session could not decide (e.g. timed out).
    Inconclusive,
}

/// What the device saw and concluded before it signed: stored with the payment for audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The liveness verdict.
    pub liveness: LivenessVerdict,
    /// The challenges performed, in order.
    pub challenges: Vec<Challenge>,
    /// Passive anti-spoof score in 0..=1 (1 = real), absent when the passive models are not installed.
    pub antispoof_score: Option<f32>,
    /// Face match score against the enrolled template (cosine similarity, -1..=1).
    pub match_score: f32,
    /// Versions of the models that produced the scores, e.g. `"detector@1a2b3c4d"`.
    pub model_versions: Vec<String>,
    /// When the capture session started, Unix time in milliseconds.
    pub started_at_ms: u64,
    /// When the capture session finished, Unix time in milliseconds.
    pub finished_at_ms: u64,
}

/// Everything the device signs for one payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentPayload {
    /// The order being paid.
    pub order: OrderRef,
    /// The server's single-use challenge nonce (base64url on the wire).
    #[serde(with = "b64_32")]
    pub nonce: [u8; 32],
    /// The registered device's id.
    pub device_id: String,
    /// Per-device signature counter: strictly greater than in the device's previous accepted payment.
    pub counter: u64,
    /// The liveness and matching evidence.
    pub evidence: Evidence,
}

impl Challenge {
    fn code(self) -> u8 {
        match self {
            Challenge::Blink => 1,
            Challenge::TurnLeft => 2,
            Challenge::TurnRight => 3,
            Challenge::LookUp => 4,
            Challenge::LookDown => 5,
            Challenge::MoveCloser(_) => 6,
        }
    }

    /// The JSON name of the challenge's kind (`"blink"`, `"turn_left"`, …, `"move_closer"`).
    pub fn name(self) -> &'static str {
        match self {
            Challenge::Blink => "blink",
            Challenge::TurnLeft => "turn_left",
            Challenge::TurnRight => "turn_right",
            Challenge::LookUp => "look_up",
            Challenge::LookDown => "look_down",
            Challenge::MoveCloser(_) => "move_closer",
        }
    }

    /// The challenge of a kind's JSON name (`move_closer`: the smallest centred outline, as a kind in a set).
    pub fn from_name(name: &str) -> Option<Self> {
        ALL_CHALLENGES.into_iter().find(|c| c.name() == name)
    }

    /// Whether `self` and `other` are the same kind of challenge (a move-closer with any outline).
    pub fn same_kind(self, other: Challenge) -> bool {
        self.code() == other.code()
    }

    /// Appends the canonical encoding: the code byte, then the outline's three bytes for a move-closer.
    fn encode(self, out: &mut Vec<u8>) {
        out.push(self.code());
        if let Challenge::MoveCloser(o) = self {
            out.extend_from_slice(&[o.scale_pct, o.dx_pct as u8, o.dy_pct as u8]);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtocolError> {
        const FIELD: &str = "evidence.challenges";
        match r.u8(FIELD)? {
            1 => Ok(Challenge::Blink),
            2 => Ok(Challenge::TurnLeft),
            3 => Ok(Challenge::TurnRight),
            4 => Ok(Challenge::LookUp),
            5 => Ok(Challenge::LookDown),
            6 => {
                let b = r.take(3, FIELD)?;
                let outline = CloserOutline {
                    scale_pct: b[0],
                    dx_pct: b[1] as i8,
                    dy_pct: b[2] as i8,
                };
                if !outline.is_valid() {
                    return Err(ProtocolError::InvalidOutline);
                }
                Ok(Challenge::MoveCloser(outline))
            }
            value => Err(ProtocolError::InvalidEnum {
                field: FIELD,
                value,
            }),
        }
    }
}

impl LivenessVerdict {
    fn code(self) -> u8 {
        match self {
            LivenessVerdict::Live => 1,
            LivenessVerdict::Spoof => 2,
            LivenessVerdict::Inconclusive => 3,
        }
    }

    fn from_code(value: u8) -> Result<Self, ProtocolError> {
        match value {
            1 => Ok(LivenessVerdict::Live),
            2 => Ok(LivenessVerdict::Spoof),
            3 => Ok(LivenessVerdict::Inconclusive),
            _ => Err(ProtocolError::InvalidEnum {
                field: "evidence.liveness",
                value,
            }),
        }
    }
}

impl OrderRef {
    /// Checks ids, currency and lengths against the protocol's limits.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        check_id("order.merchant_id", &self.merchant_id)?;
        check_id("order.order_id", &self.order_id)?;
        check_currency(&self.currency)
    }
}

impl PaymentPayload {
    /// Checks every field against the protocol's limits (the same checks decoding applies).
    pub fn validate(&self) -> Result<(), ProtocolError> {
        self.order.validate()?;
        check_id("device_id", &self.device_id)?;
        let ev = &self.evidence;
        check_count("evidence.challenges", ev.challenges.len(), MAX_CHALLENGES)?;
        check_count(
            "evidence.model_versions",
            ev.model_versions.len(),
            MAX_MODEL_VERSIONS,
        )?;
        for version in &ev.model_versions {
            check_text("evidence.model_versions", version, MODEL_VERSION_LEN)?;
        }
        if let Some(score) = ev.antispoof_score {
            check_score("evidence.antispoof_score", score, 0.0, 1.0)?;
        }
        check_score("evidence.match_score", ev.match_score, -1.0, 1.0)?;
        if ev.finished_at_ms < ev.started_at_ms {
            return Err(ProtocolError::InvalidTimestamps);
        }
        Ok(())
    }

    /// The canonical byte encoding (see `docs/protocol.md`): the exact bytes the device signs.
    ///
    /// Encoding never fails; a payload that does not [`validate`](Self::validate) encodes to bytes that
    /// [`from_canonical_bytes`](Self::from_canonical_bytes) rejects (lengths are clamped to their
    /// length-prefix width, so such bytes never decode to a different payload).
    pub fn to_canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&PAYLOAD_MAGIC);
        out.push(PAYLOAD_FORMAT_VERSION);
        put_str(&mut out, &self.order.merchant_id);
        put_str(&mut out, &self.order.order_id);
        out.extend_from_slice(&self.order.amount_minor.to_be_bytes());
        put_currency(&mut out, &self.order.currency);
        out.extend_from_slice(&self.order.items_digest);
        out.extend_from_slice(&self.nonce);
        put_str(&mut out, &self.device_id);
        out.extend_from_slice(&self.counter.to_be_bytes());
        let ev = &self.evidence;
        out.push(ev.liveness.code());
        put_count(&mut out, ev.challenges.len());
        for c in ev.challenges.iter().take(255) {
            c.encode(&mut out);
        }
        match ev.antispoof_score {
            None => out.push(0),
            Some(score) => {
                out.push(1);
                out.extend_from_slice(&score.to_bits().to_be_bytes());
            }
        }
        out.extend_from_slice(&ev.match_score.to_bits().to_be_bytes());
        put_count(&mut out, ev.model_versions.len());
        for version in ev.model_versions.iter().take(255) {
            put_str(&mut out, version);
        }
        out.extend_from_slice(&ev.started_at_ms.to_be_bytes());
        out.extend_from_slice(&ev.finished_at_ms.to_be_bytes());
        out
    }

    /// Decodes and validates canonical bytes. Rejects a wrong magic, an unknown version, truncation, bad
    /// lengths, unknown enum values, out-of-range scores and trailing bytes.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(4, "magic")? != PAYLOAD_MAGIC {
            return Err(ProtocolError::BadMagic);
        }
        let version = r.u8("version")?;
        if version != PAYLOAD_FORMAT_VERSION {
            return Err(ProtocolError::UnsupportedVersion(version));
        }
        let merchant_id = r.str("order.merchant_id")?;
        let order_id = r.str("order.order_id")?;
        let amount_minor = r.u64("order.amount_minor")?;
        let currency_bytes = r.take(3, "order.currency")?;
        let currency = String::from_utf8_lossy(currency_bytes).into_owned();
        let items_digest = r.array32("order.items_digest")?;
        let nonce = r.array32("nonce")?;
        let device_id = r.str("device_id")?;
        let counter = r.u64("counter")?;
        let liveness = LivenessVerdict::from_code(r.u8("evidence.liveness")?)?;
        let n_challenges = r.u8("evidence.challenges")? as usize;
        let challenges = (0..n_challenges)
            .map(|_| Challenge::decode(&mut r))
            .collect::<Result<Vec<_>, _>>()?;
        let antispoof_score = match r.u8("evidence.antispoof_score")? {
            0 => None,
            1 => Some(r.f32("evidence.antispoof_score")?),
            value => {
                return Err(ProtocolError::InvalidEnum {
                    field: "evidence.antispoof_score",
                    value,
                });
            }
        };
        let match_score = r.f32("evidence.match_score")?;
        let n_versions = r.u8("evidence.model_versions")? as usize;
        let mut model_versions = Vec::with_capacity(n_versions.min(MAX_MODEL_VERSIONS));
        for _ in 0..n_versions {
            model_versions.push(r.str("evidence.model_versions")?);
        }
        let started_at_ms = r.u64("evidence.started_at_ms")?;
        let finished_at_ms = r.u64("evidence.finished_at_ms")?;
        let rest = bytes.len() - r.pos;
        if rest != 0 {
            return Err(ProtocolError::TrailingBytes(rest));
        }
        let payload = PaymentPayload {
            order: OrderRef {
                merchant_id,
                order_id,
                amount_minor,
                currency,
                items_digest,
            },
            nonce,
            device_id,
            counter,
            evidence: Evidence {
                liveness,
                challenges,
                antispoof_score,
                match_score,
                model_versions,
                started_at_ms,
                finished_at_ms,
            },
        };
        payload.validate()?;
        Ok(payload)
    }
}

/// Every kind of challenge, in canonical order (the default challenge set; the move-closer outline shown is a
/// placeholder: each nonce places its own).
pub const ALL_CHALLENGES: [Challenge; 6] = [
    Challenge::Blink,
    Challenge::TurnLeft,
    Challenge::TurnRight,
    Challenge::LookUp,
    Challenge::LookDown,
    Challenge::MoveCloser(CloserOutline {
        scale_pct: CloserOutline::SCALE_PCT.0,
        dx_pct: 0,
        dy_pct: 0,
    }),
];

/// The liveness challenges for the payment that uses `nonce`, from the full set: 3 or 4 of them, never the same
/// kind twice in a row, a move-closer carrying the nonce's outline. Equal to
/// [`challenges_for_nonce_in`]`(nonce, &ALL_CHALLENGES)`.
///
/// Derivation (normative, see `docs/protocol.md`): `d = SHA-256("FacePay challenges v2" || nonce)`;
/// count `n = 3 + (d[0] & 1)`; the first challenge is `C[d[1] mod k]`; each next one at index `i` (1-based) is
/// `(previous + 1 + d[1 + i] mod (k − 1)) mod k`; the move-closer outline comes from `d[8..11]`
/// ([`CloserOutline`]).
pub fn challenges_for_nonce(nonce: &[u8; 32]) -> Vec<Challenge> {
    challenges_for_nonce_in(nonce, &ALL_CHALLENGES)
}

/// The challenges for `nonce` drawn from a server's configured challenge `set` (a server policy, e.g. blink only
/// where moving the head is impractical). The set is taken by kind in canonical order without duplicates (`k`
/// kinds; an empty set means all six); with `k = 1` the list repeats that challenge.
pub fn challenges_for_nonce_in(nonce: &[u8; 32], set: &[Challenge]) -> Vec<Challenge> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(CHALLENGE_DOMAIN);
    ctx.update(nonce);
    let d = ctx.finish();
    let d = d.as_ref();
    let outline = CloserOutline::from_digest([d[8], d[9], d[10]]);
    let allowed: Vec<Challenge> = ALL_CHALLENGES
        .into_iter()
        .filter(|c| set.is_empty() || set.iter().any(|s| s.same_kind(*c)))
        .map(|c| match c {
            Challenge::MoveCloser(_) => Challenge::MoveCloser(outline),
            other => other,
        })
        .collect();
    let k = allowed.len();
    let count = 3 + usize::from(d[0] & 1);
    let mut index = usize::from(d[1]) % k;
    let mut out = vec![allowed[index]];
    for i in 1..count {
        if k > 1 {
            index = (index + 1 + usize::from(d[1 + i]) % (k - 1)) % k;
        }
        out.push(allowed[index]);
    }
    out
}

/// Whether `challenges` is the list [`challenges_for_nonce_in`] derives from `nonce` for some challenge set (the
/// device's check of a server answer: it does not know the server's configured set).
pub fn is_nonce_challenge_list(nonce: &[u8; 32], challenges: &[Challenge]) -> bool {
    (1u8..64).any(|mask| {
        let set: Vec<Challenge> = ALL_CHALLENGES
            .into_iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, c)| c)
            .collect();
        challenges_for_nonce_in(nonce, &set) == challenges
    })
}

/// Verifies an ASN.1 DER ECDSA P-256 / SHA-256 signature of `message` by a SEC1 uncompressed public key.
pub fn verify_signature(
    public_key_sec1_uncompressed: &[u8],
    message: &[u8],
    der_signature: &[u8],
) -> Result<(), ProtocolError> {
    check_public_key(public_key_sec1_uncompressed)?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key_sec1_uncompressed)
        .verify(message, der_signature)
        .map_err(|_| ProtocolError::BadSignature)
}

/// Checks that `key` has the shape of a SEC1 uncompressed P-256 point (65 bytes starting with `0x04`).
/// Whether the point is on the curve is checked when a signature is verified, or by [`check_point_on_curve`].
pub fn check_public_key(key: &[u8]) -> Result<(), ProtocolError> {
    if key.len() == 65 && key[0] == 0x04 {
        Ok(())
    } else {
        Err(ProtocolError::InvalidPublicKey)
    }
}

/// Checks that `key` is a SEC1 uncompressed point on P-256 (registration): ring's ECDH with an ephemeral key
/// validates the peer point fully (coordinates in range, curve equation).
pub fn check_point_on_curve(key: &[u8]) -> Result<(), ProtocolError> {
    use ring::agreement::{ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey, agree_ephemeral};
    check_public_key(key)?;
    let rng = ring::rand::SystemRandom::new();
    let ephemeral = EphemeralPrivateKey::generate(&ECDH_P256, &rng)
        .map_err(|_| ProtocolError::InvalidPublicKey)?;
    agree_ephemeral(ephemeral, &UnparsedPublicKey::new(&ECDH_P256, key), |_| ())
        .map_err(|_| ProtocolError::InvalidPublicKey)
}

/// Domain separator of the registration message.
pub const REGISTRATION_MAGIC: &[u8; 16] = b"FPAY-REGISTER-v1";

/// The bytes a device signs to prove it holds the key it registers (and that App Attest's clientDataHash covers):
/// `"FPAY-REGISTER-v1" ‖ challenge (32) ‖ len(device_id) (u16 BE) ‖ device_id ‖ public key (65)`.
pub fn registration_message(challenge: &[u8; 32], device_id: &str, public_key: &[u8]) -> Vec<u8> {
    let id = device_id.as_bytes();
    let len = u16::try_from(id.len()).unwrap_or(u16::MAX);
    let mut message =
        Vec::with_capacity(REGISTRATION_MAGIC.len() + 32 + 2 + id.len() + public_key.len());
    message.extend_from_slice(REGISTRATION_MAGIC);
    message.extend_from_slice(challenge);
    message.extend_from_slice(&len.to_be_bytes());
    message.extend_from_slice(&id[..usize::from(len)]);
    message.extend_from_slice(public_key);
    message
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// Checks an id: 1..=128 bytes of UTF-8 without control characters.
pub fn check_id(field: &'static str, value: &str) -> Result<(), ProtocolError> {
    check_text(field, value, ID_LEN)
}

/// Checks an ISO 4217 alphabetic currency code.
pub fn check_currency(currency: &str) -> Result<(), ProtocolError> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(ProtocolError::InvalidCurrency(currency.to_owned()))
    }
}

fn check_text(
    field: &'static str,
    value: &str,
    (min, max): (usize, usize),
) -> Result<(), ProtocolError> {
    let len = value.len();
    if len < min || len > max {
        return Err(ProtocolError::InvalidLength {
            field,
            len,
            min,
            max,
        });
    }
    if value.chars().any(char::is_control) {
        return Err(ProtocolError::ControlCharacter { field });
    }
    Ok(())
}

fn check_count(field: &'static str, len: usize, max: usize) -> Result<(), ProtocolError> {
    if len > max {
        return Err(ProtocolError::InvalidLength {
            field,
            len,
            min: 0,
            max,
        });
    }
    Ok(())
}

fn check_score(field: &'static str, value: f32, min: f32, max: f32) -> Result<(), ProtocolError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ProtocolError::InvalidScore { field, min, max })
    }
}

/// Writes a u16-length-prefixed UTF-8 string (clamped to 65,535 bytes; over-long ids fail validation anyway).
fn put_str(out: &mut Vec<u8>, value: &str) {
    let bytes = &value.as_bytes()[..value.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Writes an item count as one byte (clamped to 255; longer lists fail validation anyway).
fn put_count(out: &mut Vec<u8>, len: usize) {
    out.push(len.min(255) as u8);
}

/// Writes exactly three currency bytes (padded with NUL or cut, so a bad code fails validation when decoded).
fn put_currency(out: &mut Vec<u8>, currency: &str) {
    let mut code = [0u8; 3];
    for (dst, src) in code.iter_mut().zip(currency.bytes()) {
        *dst = src;
    }
    if currency.len() != 3 {
        code[2] = 0;
    }
    out.extend_from_slice(&code);
}

/// A cursor over canonical bytes that names the field it was reading when it fails.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ProtocolError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or(ProtocolError::Truncated { field })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.take(1, field)?[0])
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, ProtocolError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8, field)?);
        Ok(u64::from_be_bytes(b))
    }

    fn f32(&mut self, field: &'static str) -> Result<f32, ProtocolError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4, field)?);
        Ok(f32::from_bits(u32::from_be_bytes(b)))
    }

    fn array32(&mut self, field: &'static str) -> Result<[u8; 32], ProtocolError> {
        let mut b = [0u8; 32];
        b.copy_from_slice(self.take(32, field)?);
        Ok(b)
    }

    fn str(&mut self, field: &'static str) -> Result<String, ProtocolError> {
        let mut len = [0u8; 2];
        len.copy_from_slice(self.take(2, field)?);
        let bytes = self.take(usize::from(u16::from_be_bytes(len)), field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError::InvalidUtf8 { field })
    }
}

#[cfg(test)]
mod tests;
