//! The parts of the store's traits that both backends implement alike: each method hands its
//! arguments to the backend's inherent `…_in` method of the same name (`users_in`, `claim_feeds_in`, …),
//! which holds the backend's SQL.

/// Implements `UserStore`, `FeedStore`, `LeaseStore` and `TranslationStore` for a backend by forwarding
/// every method to its `…_in` namesake.
macro_rules! forward_to_backend {
    ($store:ty) => {
        impl $crate::UserStore for $store {
            fn add_user(&self, user: NewUser) -> Result<User> {
                self.add_user_in(user)
            }

            fn users(&self, member: &MemberId) -> Result<Vec<User>> {
                self.users_in(member)
            }

            fn user_by_email(&self, email: &str) -> Result<Option<User>> {
                self.user_by_email_in(email)
            }

            fn update_user(
                &self,
                member: &MemberId,
                id: &UserId,
                password_hash: Option<String>,
                locale: Option<Option<String>>,
                disabled: Option<bool>,
            ) -> Result<bool> {
                self.update_user_in(member, id, password_hash, locale, disabled)
            }

            fn set_user_time_zone(&self, member: &MemberId, id: &UserId, time_zone: Option<String>) -> Result<bool> {
                self.set_user_time_zone_in(member, id, time_zone)
            }

            fn create_session(
                &self,
                user: &UserId,
                token_hash: [u8; 32],
                csrf: &str,
                expires_at: Timestamp,
            ) -> Result<()> {
                self.create_session_in(user, token_hash, csrf, expires_at)
            }

            fn session(&self, token_hash: [u8; 32], now: Timestamp) -> Result<Option<Session>> {
                self.session_in(token_hash, now)
            }

            fn end_session(&self, token_hash: [u8; 32]) -> Result<()> {
                self.end_session_in(token_hash)
            }

            fn login_failures(&self, keys: &[String], since: Timestamp) -> Result<Vec<$crate::LoginFailures>> {
                self.login_failures_in(keys, since)
            }

            fn record_login_failure(&self, keys: Vec<String>, at: Timestamp, forget_before: Timestamp) -> Result<()> {
                self.record_login_failure_in(keys, at, forget_before)
            }

            fn clear_login_failures(&self, keys: Vec<String>) -> Result<()> {
                self.clear_login_failures_in(keys)
            }
        }

        impl $crate::FeedStore for $store {
            fn add_feed(&self, member: &MemberId, spec: $crate::FeedSpec) -> Result<$crate::FeedProvider> {
                self.add_feed_in(member, spec)
            }

            fn feeds(&self, member: &MemberId) -> Result<Vec<$crate::FeedProvider>> {
                self.feeds_in(member)
            }

            fn feed(&self, member: &MemberId, id: &karavan_domain::FeedId) -> Result<Option<$crate::FeedProvider>> {
                self.feed_in(member, id)
            }

            fn update_feed(
                &self,
                member: &MemberId,
                id: &karavan_domain::FeedId,
                spec: $crate::FeedSpec,
            ) -> Result<$crate::FeedProvider> {
                self.update_feed_in(member, id, spec)
            }

            fn delete_feed(&self, member: &MemberId, id: &karavan_domain::FeedId) -> Result<bool> {
                self.delete_feed_in(member, id)
            }

            fn set_feed_paused(
                &self,
                member: &MemberId,
                id: &karavan_domain::FeedId,
                paused: bool,
                now: Timestamp,
            ) -> Result<$crate::FeedProvider> {
                self.set_feed_paused_in(member, id, paused, now)
            }

            fn claim_feeds(
                &self,
                holder: &str,
                now: Timestamp,
                lease_until: Timestamp,
                limit: u32,
            ) -> Result<Vec<$crate::FeedProvider>> {
                self.claim_feeds_in(holder, now, lease_until, limit)
            }

            fn release_feeds(&self, holder: &str) -> Result<usize> {
                self.release_feeds_in(holder)
            }

            fn next_feed_due(&self) -> Result<Option<Timestamp>> {
                self.next_feed_due_in()
            }

            fn seen_entries(
                &self,
                id: &karavan_domain::FeedId,
                keys: &[String],
                hashes: &[String],
            ) -> Result<Vec<$crate::SeenEntry>> {
                self.seen_entries_in(id, keys, hashes)
            }

            fn record_feed_poll(
                &self,
                holder: &str,
                id: &karavan_domain::FeedId,
                at: Timestamp,
                record: $crate::PollRecord,
            ) -> Result<()> {
                self.record_feed_poll_in(holder, id, at, record)
            }
        }

        impl $crate::LeaseStore for $store {
            fn acquire_lease(&self, name: &str, holder: &str, now: Timestamp, until: Timestamp) -> Result<bool> {
                self.acquire_lease_in(name, holder, now, until)
            }

            fn release_lease(&self, name: &str, holder: &str) -> Result<bool> {
                self.release_lease_in(name, holder)
            }

            fn lease(&self, name: &str) -> Result<Option<(String, Timestamp)>> {
                self.lease_in(name)
            }

            fn generation(&self, name: &str) -> Result<i64> {
                self.generation_in(name)
            }
        }

        impl $crate::TranslationStore for $store {
            fn read_languages(&self, member: &MemberId) -> Result<Vec<String>> {
                self.read_languages_in(member)
            }

            fn set_read_languages(&self, member: &MemberId, languages: Vec<String>) -> Result<()> {
                self.set_read_languages_in(member, languages)
            }

            fn glossaries(&self, member: &MemberId) -> Result<Vec<$crate::Glossary>> {
                self.glossaries_in(member)
            }

            fn set_glossary(
                &self,
                member: &MemberId,
                source: &str,
                target: &str,
                terms: Vec<$crate::GlossaryTerm>,
            ) -> Result<$crate::Glossary> {
                self.set_glossary_in(member, source, target, terms)
            }

            fn glossaries_into(&self, target: &str) -> Result<Vec<$crate::Glossary>> {
                self.glossaries_into_in(target)
            }

            fn claim_translation_jobs(
                &self,
                holder: &str,
                now: Timestamp,
                lease_until: Timestamp,
                limits: $crate::ClaimLimits,
            ) -> Result<Vec<$crate::TranslationJob>> {
                self.claim_translation_jobs_in(holder, now, lease_until, limits)
            }

            fn finish_translation_job(&self, holder: &str, id: i64, outcome: $crate::JobOutcome) -> Result<()> {
                self.finish_translation_job_in(holder, id, outcome)
            }

            fn release_translation_jobs(&self, holder: &str) -> Result<usize> {
                self.release_translation_jobs_in(holder)
            }

            fn enqueue_translation(&self, seq: i64, language: &str) -> Result<bool> {
                self.enqueue_translation_in(seq, language)
            }

            fn prioritize_translation(&self, seq: i64, language: &str) -> Result<bool> {
                self.prioritize_translation_in(seq, language)
            }

            fn translation_progress(
                &self,
                viewer: &MemberId,
                seq: i64,
                language: &str,
                now: Timestamp,
            ) -> Result<$crate::TranslationProgress> {
                self.translation_progress_in(viewer, seq, language, now)
            }

            fn translation_queue(&self, owner: &MemberId) -> Result<$crate::PartCounts> {
                self.translation_queue_in(owner)
            }

            fn put_translation(&self, translation: $crate::StoredTranslation) -> Result<()> {
                self.put_translation_in(translation)
            }

            fn translations(&self, seqs: &[i64]) -> Result<Vec<$crate::StoredTranslation>> {
                self.translations_in(seqs)
            }

            fn cached_segments(&self, keys: &[[u8; 32]]) -> Result<Vec<([u8; 32], String)>> {
                self.cached_segments_in(keys)
            }

            fn cache_segments(&self, entries: Vec<([u8; 32], String)>) -> Result<()> {
                self.cache_segments_in(entries)
            }
        }

        impl $crate::StoryStore for $store {
            fn story_position(&self) -> Result<i64> {
                self.story_position_in()
            }

            fn record_stories(&self, holder: &str, through: i64, round: $crate::StoryRound) -> Result<()> {
                self.record_stories_in(holder, through, round)
            }

            fn story(&self, id: &karavan_domain::StoryId) -> Result<$crate::StoryLookup> {
                self.story_in(id)
            }

            fn stories_of(
                &self,
                items: &[karavan_domain::ItemId],
            ) -> Result<Vec<(karavan_domain::ItemId, karavan_domain::StoryId)>> {
                self.stories_of_in(items)
            }

            fn stories_active_since(&self, since: Timestamp, limit: u32) -> Result<Vec<$crate::StoredStory>> {
                self.stories_active_since_in(since, limit)
            }
        }
    };
}

pub(crate) use forward_to_backend;
