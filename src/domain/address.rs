//! Destination address shape checks, per receiving currency.
//!
//! These catch typos and wrong-network addresses before money is held; CoinsPaid still does
//! the authoritative check (and refuses what slips through, which releases the hold).

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn all_in(text: &str, alphabet: &[u8]) -> bool {
    text.bytes().all(|b| alphabet.contains(&b))
}

fn bech32_with_prefix(address: &str, prefixes: &[&str]) -> bool {
    let lower = address.to_ascii_lowercase();
    // Bech32 is either all lowercase or all uppercase, never mixed.
    if address != lower && address != address.to_ascii_uppercase() {
        return false;
    }
    prefixes.iter().any(|p| {
        lower
            .strip_prefix(p)
            .is_some_and(|rest| (20..=87).contains(&rest.len()) && all_in(rest, BECH32))
    })
}

fn base58_with_lead(
    address: &str,
    leads: &[char],
    lengths: std::ops::RangeInclusive<usize>,
) -> bool {
    lengths.contains(&address.len()) && address.starts_with(leads) && all_in(address, BASE58)
}

/// Does `address` look like a valid destination for `currency` (the crypto received)?
/// Unknown currencies accept any visible ASCII of a plausible length.
pub fn looks_valid(currency: &str, address: &str) -> bool {
    if !(10..=128).contains(&address.len()) || !address.bytes().all(|b| b.is_ascii_graphic()) {
        return false;
    }
    match currency {
        "BTC" => {
            bech32_with_prefix(address, &["bc1", "tb1", "bcrt1"])
                || base58_with_lead(address, &['1', '3', 'm', 'n', '2'], 26..=35)
        }
        "LTC" => {
            bech32_with_prefix(address, &["ltc1", "tltc1"])
                || base58_with_lead(address, &['L', 'M', '3', 'm', 'n', 'Q'], 26..=35)
        }
        "ETH" => {
            address.len() == 42
                && address.starts_with("0x")
                && address[2..].bytes().all(|b| b.is_ascii_hexdigit())
        }
        // USDT on Tron.
        "USDTT" => base58_with_lead(address, &['T'], 34..=34),
        "XRP" => base58_with_lead(address, &['r'], 25..=35),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::looks_valid;

    #[test]
    fn accepts_real_address_shapes() {
        assert!(looks_valid(
            "BTC",
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
        ));
        assert!(looks_valid("BTC", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"));
        assert!(looks_valid("BTC", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"));
        assert!(looks_valid(
            "BTC",
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
        ));
        assert!(looks_valid(
            "ETH",
            "0xde0B295669a9FD93d5F28D9Ec85E40f4cb697BAe"
        ));
        assert!(looks_valid(
            "LTC",
            "ltc1qg42tkwuuxefutzxezdkdel39gfstuap288mfea"
        ));
        assert!(looks_valid("USDTT", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"));
        assert!(looks_valid("XRP", "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh"));
    }

    #[test]
    fn refuses_wrong_network_and_garbage() {
        assert!(!looks_valid(
            "BTC",
            "0xde0B295669a9FD93d5F28D9Ec85E40f4cb697BAe"
        ));
        assert!(!looks_valid(
            "ETH",
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
        ));
        assert!(!looks_valid(
            "ETH",
            "0xde0B295669a9FD93d5F28D9Ec85E40f4cb697BA"
        ));
        assert!(!looks_valid("BTC", "1BoatSLRHtKNngkdXEeobR76b53LETtpy0")); // 0 is not base58
        assert!(!looks_valid(
            "BTC",
            "bc1Qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
        )); // mixed case
        assert!(!looks_valid("XRP", "short"));
        assert!(!looks_valid(
            "BTC",
            "bc1q ar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
        ));
    }
}
