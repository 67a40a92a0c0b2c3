//! On-device vision: detect ▸ landmarks ▸ align ▸ anti-spoof ▸ embed.
