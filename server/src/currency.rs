//! Currencies the server accepts: the ISO 4217 table with each currency's minor-unit exponent (JPY 0, EUR 2,
//! BHD 3), and the amount limits. The server owns this table; `currency` and `amount_minor` of every order are
//! checked against it.
//!
//! Source: ISO 4217 "List One" (current currency and funds codes) as published by its maintenance agency, SIX,
//! dated 2024-06-25: every code whose minor unit is a number (the "N.A." codes, such as XAU, XDR or XTS, are not
//! money one can pay in and are left out). Currencies introduced after that date (e.g. XCG, which replaces ANG in
//! 2025) need a row added here.

/// Largest amount in minor units an order may have: 999 999 999 999 (12 digits, e.g. 9 999 999 999.99 EUR),
/// well inside the 2^53 range JSON parsers read exactly.
pub const MAX_AMOUNT_MINOR: u64 = 999_999_999_999;

/// `(alphabetic code, minor-unit exponent)`, sorted by code.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// The minor-unit exponent of an ISO 4217 code (`None` for a code that is not in the table).
pub fn minor_units(code: &str) -> Option<u8> {
    CURRENCIES
        .binary_search_by(|(c, _)| (*c).cmp(code))
        .ok()
        .map(|i| CURRENCIES[i].1)
}

/// Why an order's money fields were rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The code is not an ISO 4217 currency with minor units.
    #[error("currency {0:?} is not an ISO 4217 currency code this server accepts")]
    UnknownCurrency(String),
    /// Zero is not an amount to pay.
    #[error("amount_minor must be greater than 0")]
    Zero,
    /// Above [`MAX_AMOUNT_MINOR`].
    #[error("amount_minor {0} exceeds the maximum of {MAX_AMOUNT_MINOR}")]
    TooLarge(u64),
}

/// Checks an order's currency and amount; returns the currency's minor-unit exponent.
pub fn check_money(currency: &str, amount_minor: u64) -> Result<u8, MoneyError> {
    let exponent =
        minor_units(currency).ok_or_else(|| MoneyError::UnknownCurrency(currency.to_owned()))?;
    if amount_minor == 0 {
        return Err(MoneyError::Zero);
    }
    if amount_minor > MAX_AMOUNT_MINOR {
        return Err(MoneyError::TooLarge(amount_minor));
    }
    Ok(exponent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_unique_and_well_formed() {
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(
            CURRENCIES
                .iter()
                .all(|(c, e)| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) && *e <= 4)
        );
        assert_eq!(CURRENCIES.len(), 166);
    }

    #[test]
    fn exponents_match_iso_4217() {
        for (code, exponent) in [
            ("JPY", 0),
            ("KRW", 0),
            ("ISK", 0),
            ("XOF", 0),
            ("EUR", 2),
            ("USD", 2),
            ("GBP", 2),
            ("CHF", 2),
            ("BHD", 3),
            ("KWD", 3),
            ("JOD", 3),
            ("TND", 3),
            ("CLF", 4),
            ("UYW", 4),
        ] {
            assert_eq!(minor_units(code), Some(exponent), "{code}");
        }
        for code in ["XYZ", "XAU", "XTS", "XXX", "eur", "EU", "EURO", ""] {
            assert_eq!(minor_units(code), None, "{code}");
        }
    }

    #[test]
    fn amounts_must_be_positive_and_bounded() {
        assert_eq!(check_money("BHD", 1), Ok(3));
        assert_eq!(check_money("EUR", MAX_AMOUNT_MINOR), Ok(2));
        assert_eq!(check_money("EUR", 0), Err(MoneyError::Zero));
        assert_eq!(
            check_money("EUR", MAX_AMOUNT_MINOR + 1),
            Err(MoneyError::TooLarge(MAX_AMOUNT_MINOR + 1))
        );
        assert!(matches!(
            check_money("XYZ", 100),
            Err(MoneyError::UnknownCurrency(_))
        ));
    }
}
