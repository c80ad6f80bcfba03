//! The visibility rule: who may see which item, and from when. Every read path (get, list, versions,
//! and later search and feeds) applies this rule; the store's SQL implements the same rule, and its
//! tests compare the two.

use crate::{Agreement, MemberId, PubStatus, Right, Timestamp};

/// What the rule needs to know about an item's current version.
#[derive(Debug, Clone, Copy)]
pub struct ItemAccess<'a> {
    pub owner: &'a MemberId,
    pub pub_status: PubStatus,
    /// When the version was stored.
    pub committed_at: Timestamp,
    /// `embargoedUntil` of the version, if any.
    pub embargoed_until: Option<Timestamp>,
    /// Subject keys of the version (codes, URIs and names), for agreements limited to subjects.
    pub subjects: &'a [String],
}

impl ItemAccess<'_> {
    /// When the version becomes available to others before any agreement delay: when it was stored,
    /// or when its embargo ends if that is later.
    pub fn available_at(&self) -> Timestamp {
        match self.embargoed_until {
            Some(until) if until > self.committed_at => until,
            _ => self.committed_at,
        }
    }
}

/// The answer of the rule for one viewer at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// The viewer may see the item, and has since `since`, with the given right.
    Visible { since: Timestamp, right: Right },
    /// The item was killed; the viewer could see it and may see the kill notice.
    Killed { since: Timestamp },
    /// The viewer may not know the item exists.
    Hidden,
}

/// The smallest delay, and the strongest right, among the agreements that let `viewer` see an item of
/// `owner` with these subjects; `None` when no agreement does.
pub fn effective_delay(
    viewer: &MemberId,
    owner: &MemberId,
    subjects: &[String],
    agreements: &[Agreement],
) -> Option<(u32, Right)> {
    agreements.iter().filter(|a| &a.grantor == owner && a.grantee.includes(viewer) && a.covers_subjects(subjects)).fold(
        None,
        |best, a| match best {
            None => Some((a.delay_minutes, a.right)),
            Some((delay, right)) => Some((delay.min(a.delay_minutes), right.max(a.right))),
        },
    )
}

/// From when `viewer` may see the version under these agreements, and with which right: the owner from
/// its commit, anyone else from `available_at + delay` of the agreements that cover it; `None`: never.
pub fn visible_from(viewer: &MemberId, item: &ItemAccess<'_>, agreements: &[Agreement]) -> Option<(Timestamp, Right)> {
    if viewer == item.owner {
        return Some((item.committed_at, Right::Republish));
    }
    let (delay, right) = effective_delay(viewer, item.owner, item.subjects, agreements)?;
    Some((item.available_at().plus_minutes(i64::from(delay)), right))
}

/// Applies the rule. The owner sees its items at once, embargoed or killed. Anyone else needs an
/// agreement that covers the item, and sees it from `available_at + delay`; a killed item then shows
/// only as a kill notice.
pub fn visibility_for(
    viewer: &MemberId,
    item: &ItemAccess<'_>,
    agreements: &[Agreement],
    now: Timestamp,
) -> Visibility {
    let Some((since, right)) = visible_from(viewer, item, agreements) else {
        return Visibility::Hidden;
    };
    if since > now {
        return Visibility::Hidden;
    }
    match item.pub_status {
        PubStatus::Canceled => Visibility::Killed { since },
        _ => Visibility::Visible { since, right },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgreementId, Grantee, Ulid};

    fn member(n: u8) -> MemberId {
        MemberId::new(Ulid::from_parts(1, [n; 10]))
    }

    fn grant(grantor: &MemberId, grantee: Grantee, subjects: &[&str], delay: u32) -> Agreement {
        Agreement {
            id: AgreementId::new(Ulid::from_parts(2, [0; 10])),
            grantor: grantor.clone(),
            grantee,
            right: Right::View,
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            delay_minutes: delay,
            created_at: Timestamp(0),
        }
    }

    const MIN: i64 = 60_000_000;

    #[test]
    fn owner_sees_everything_at_once() {
        let owner = member(1);
        let item = ItemAccess {
            owner: &owner,
            pub_status: PubStatus::Usable,
            committed_at: Timestamp(100),
            embargoed_until: Some(Timestamp(10 * MIN)),
            subjects: &[],
        };
        assert!(matches!(visibility_for(&owner, &item, &[], Timestamp(101)), Visibility::Visible { .. }));
    }

    #[test]
    fn others_need_an_agreement_and_wait_for_embargo_and_delay() {
        let (owner, reader, stranger) = (member(1), member(2), member(3));
        let subjects = vec!["medtop:04000000".to_string()];
        let item = ItemAccess {
            owner: &owner,
            pub_status: PubStatus::Usable,
            committed_at: Timestamp(0),
            embargoed_until: Some(Timestamp(10 * MIN)),
            subjects: &subjects,
        };
        let agreements = vec![grant(&owner, Grantee::Member(reader.clone()), &[], 5)];
        assert_eq!(visibility_for(&stranger, &item, &agreements, Timestamp(100 * MIN)), Visibility::Hidden);
        assert_eq!(visibility_for(&reader, &item, &agreements, Timestamp(14 * MIN)), Visibility::Hidden);
        assert_eq!(
            visibility_for(&reader, &item, &agreements, Timestamp(15 * MIN)),
            Visibility::Visible { since: Timestamp(15 * MIN), right: Right::View }
        );
    }

    #[test]
    fn subject_limits_and_the_smallest_delay_apply() {
        let (owner, reader) = (member(1), member(2));
        let subjects = vec!["sport".to_string()];
        let item = ItemAccess {
            owner: &owner,
            pub_status: PubStatus::Usable,
            committed_at: Timestamp(0),
            embargoed_until: None,
            subjects: &subjects,
        };
        let only_economy = vec![grant(&owner, Grantee::Everyone, &["economy"], 0)];
        assert_eq!(visibility_for(&reader, &item, &only_economy, Timestamp(MIN)), Visibility::Hidden);
        let mut both = vec![
            grant(&owner, Grantee::Everyone, &[], 60),
            grant(&owner, Grantee::Member(reader.clone()), &["sport"], 0),
        ];
        both[1].right = Right::Republish;
        assert_eq!(
            visibility_for(&reader, &item, &both, Timestamp(1)),
            Visibility::Visible { since: Timestamp(0), right: Right::Republish }
        );
    }

    #[test]
    fn kills_hide_content_but_leave_a_notice() {
        let (owner, reader) = (member(1), member(2));
        let item = ItemAccess {
            owner: &owner,
            pub_status: PubStatus::Canceled,
            committed_at: Timestamp(0),
            embargoed_until: None,
            subjects: &[],
        };
        let agreements = vec![grant(&owner, Grantee::Everyone, &[], 0)];
        assert_eq!(
            visibility_for(&reader, &item, &agreements, Timestamp(1)),
            Visibility::Killed { since: Timestamp(0) }
        );
        assert_eq!(visibility_for(&member(9), &item, &[], Timestamp(1)), Visibility::Hidden);
    }
}
