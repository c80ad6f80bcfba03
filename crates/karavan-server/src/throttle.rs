//! Slowing down repeated failed sign-ins, without letting an attacker lock a real user out.
//!
//! Every failed sign-in is counted in the store (so on every node and across restarts) under three
//! keys, each with its own allowance and its own longest wait:
//!
//! | key | free failures | then waits of | at most |
//! |---|---|---|---|
//! | the account from this address | 5 | 1 s, 2 s, 4 s, … | 15 min |
//! | this address, whatever account | 20 | 1 s, 2 s, 4 s, … | 15 min |
//! | the account, from anywhere | 20 | 1 s, 2 s, 4 s, … | 1 min |
//!
//! So one address guessing one account gets five tries and then ever longer waits; one address
//! spraying many accounts is slowed after twenty; many addresses guessing one account together are
//! held to about one guess a minute, which is the most the account's owner, signing in from their own
//! address, ever waits. While a wait runs, sign-in is refused before the password is checked (so a
//! guess made during it tells nothing), for existing and unknown accounts alike. A successful
//! sign-in forgets the account's counts; counts older than a day are forgotten.

use std::net::IpAddr;
use std::time::Duration;

use karavan_domain::Timestamp;
use karavan_store::LoginFailures;

/// How long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(24 * 3600);

struct Rule {
    prefix: &'static str,
    free: u32,
    longest: Duration,
}

const RULES: [Rule; 3] = [
    Rule { prefix: "pair:", free: 5, longest: Duration::from_secs(15 * 60) },
    Rule { prefix: "addr:", free: 20, longest: Duration::from_secs(15 * 60) },
    Rule { prefix: "acct:", free: 20, longest: Duration::from_secs(60) },
];

/// The keys a sign-in attempt is counted under. IPv6 addresses count by their /64 (one host's
/// share); an unknown address (a test without sockets) counts as one address.
pub fn keys(email: &str, address: Option<IpAddr>) -> Vec<String> {
    let account = email.trim().to_lowercase();
    let address = match address {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        None => "unknown".to_string(),
    };
    vec![format!("pair:{account}|{address}"), format!("addr:{address}"), format!("acct:{account}")]
}

/// The keys a successful sign-in forgets: the account's own (not the address's, which an attacker
/// could otherwise reset by signing in to an account of their own).
pub fn keys_to_forget(keys: &[String]) -> Vec<String> {
    keys.iter().filter(|key| !key.starts_with("addr:")).cloned().collect()
}

/// How long the attempt must still wait, if at all, given the failures counted under its keys.
pub fn wait(failures: &[LoginFailures], now: Timestamp) -> Option<Duration> {
    failures
        .iter()
        .filter_map(|counted| {
            let rule = RULES.iter().find(|rule| counted.key.starts_with(rule.prefix))?;
            let over = counted.failures.checked_sub(rule.free)?;
            if over == 0 {
                return None;
            }
            let delay = Duration::from_secs(1u64 << (over - 1).min(20)).min(rule.longest);
            let until = counted.last_at.micros().saturating_add(i64::try_from(delay.as_micros()).unwrap_or(i64::MAX));
            let remaining = until.saturating_sub(now.micros());
            (remaining > 0).then(|| Duration::from_micros(u64::try_from(remaining).unwrap_or(0)))
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(key: &str, failures: u32, last_at: i64) -> LoginFailures {
        LoginFailures { key: key.to_string(), failures, last_at: Timestamp(last_at) }
    }

    #[test]
    fn waits_grow_after_the_free_failures_and_are_capped() {
        let now = Timestamp(1_000_000_000_000);
        let at = now.micros();
        assert_eq!(wait(&[counted("pair:a|1.2.3.4", 5, at)], now), None, "five are free");
        assert_eq!(wait(&[counted("pair:a|1.2.3.4", 6, at)], now), Some(Duration::from_secs(1)));
        assert_eq!(wait(&[counted("pair:a|1.2.3.4", 8, at)], now), Some(Duration::from_secs(4)));
        assert_eq!(wait(&[counted("pair:a|1.2.3.4", 400, at)], now), Some(Duration::from_secs(900)));
        assert_eq!(
            wait(&[counted("acct:a", 400, at)], now),
            Some(Duration::from_secs(60)),
            "the owner waits a minute at most"
        );
        assert_eq!(wait(&[counted("addr:1.2.3.4", 20, at)], now), None);
        // A wait that has passed is no wait.
        assert_eq!(wait(&[counted("pair:a|1.2.3.4", 6, at - 2_000_000)], now), None);
        // The longest of the keys' waits.
        let all = [counted("pair:a|x", 7, at), counted("acct:a", 30, at)];
        assert_eq!(wait(&all, now), Some(Duration::from_secs(60)));
    }

    #[test]
    fn keys_name_the_account_the_address_and_both() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(
            keys(" Editor@Kazinform.kz ", Some(v4)),
            ["pair:editor@kazinform.kz|203.0.113.7", "addr:203.0.113.7", "acct:editor@kazinform.kz"]
        );
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(keys("a", Some(v6))[1], "addr:2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(keys("a", Some(mapped))[1], "addr:203.0.113.7");
        assert_eq!(keys_to_forget(&keys("a", Some(v4))), ["pair:a|203.0.113.7", "acct:a"]);
    }
}
