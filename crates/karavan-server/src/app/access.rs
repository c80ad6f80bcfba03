//! Who takes part: member agencies, their API keys and the people who sign in to the newsroom. The
//! API, the newsroom's administration page and the CLI all come through here, so a key, a member or a
//! user is checked the same way whichever edge made it.

use karavan_domain::{ApiKey, KeyId, Member, MemberId, Role, UserId};
use karavan_store::{KeyInfo, NewMember, NewUser, User};

use super::Core;
use crate::bus::{ConfigChange, Event};
use crate::error::{ApiError, ApiResult};
use crate::password;

/// Adds a member agency (the edge checked that the caller is an operator of the exchange).
pub async fn add_member(core: &Core, member: NewMember) -> ApiResult<Member> {
    if member.languages.is_empty() {
        return Err(ApiError::invalid("languages: at least one language tag"));
    }
    let member = core.blocking(move |store| store.add_member(member)).await?;
    core.bus().publish(Event::Config(ConfigChange::Members));
    Ok(member)
}

/// The member, or `NotFound`.
pub async fn existing_member(core: &Core, id: &MemberId) -> ApiResult<Member> {
    let id = id.clone();
    core.blocking(move |store| store.member(&id)).await?.ok_or_else(|| ApiError::not_found("member"))
}

/// Creates an API key of `member` with `role`; the key itself is returned only here, once.
pub async fn create_key(
    core: &Core,
    member: &MemberId,
    role: Role,
    label: Option<String>,
) -> ApiResult<(KeyInfo, ApiKey)> {
    let member = member.clone();
    let (info, key) = core.blocking(move |store| store.create_key(&member, role, label)).await?;
    tracing::info!(key_id = %info.id, member = %info.member, role = %info.role, "created an API key");
    Ok((info, key))
}

/// Revokes one of `member`'s live keys; `NotFound` if it has none by that id.
pub async fn revoke_key(core: &Core, member: &MemberId, key: &KeyId) -> ApiResult<()> {
    let (member, key) = (member.clone(), key.clone());
    let revoked = core.blocking(move |store| store.revoke_key(&member, &key)).await?;
    if !revoked {
        return Err(ApiError::not_found("live key of your member"));
    }
    Ok(())
}

/// A new newsroom user, as an edge read it (nothing checked yet).
#[derive(Debug, Clone)]
pub struct UserInput {
    pub member: MemberId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub password: String,
    /// An operator of the exchange (only the CLI, run by the operator, makes these).
    pub operator: bool,
}

/// A new user's email (trimmed, lowercased: the sign-in name) and display name (trimmed), checked
/// (an edge that asks for the password afterwards checks these first).
pub fn check_user_names(email: &str, display_name: &str) -> ApiResult<(String, String)> {
    let email = email.trim().to_lowercase();
    if !email.contains('@') || email.len() > 254 || email.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid(format!("email: {email:?} is not an email address")));
    }
    let display_name = display_name.trim().to_string();
    if display_name.is_empty() || display_name.chars().count() > 200 {
        return Err(ApiError::invalid("name: a name of 1 to 200 characters"));
    }
    Ok((email, display_name))
}

/// Adds a user: the email is the sign-in name (lowercased, unique across the exchange), the password
/// strong enough (and unlike the email and name); only its argon2id hash is stored.
pub async fn add_user(core: &Core, input: UserInput) -> ApiResult<User> {
    let (email, display_name) = check_user_names(&input.email, &input.display_name)?;
    password::check_for(&input.password, &[&email, &display_name]).map_err(ApiError::invalid)?;
    let secret = input.password;
    let password_hash = core.compute(move || password::hash(&secret)).await?.map_err(ApiError::invalid)?;
    let new = NewUser {
        member: input.member,
        email,
        display_name,
        role: input.role,
        password_hash,
        operator: input.operator,
    };
    let user = core.blocking(move |store| store.add_user(new)).await?;
    tracing::info!(user = %user.id, member = %user.member, role = %user.role, "added a user");
    Ok(user)
}

/// Sets a user's password (strength checked like a new user's); `NotFound` if `member` has no such user.
pub async fn set_password(core: &Core, member: &MemberId, user: &UserId, secret: String) -> ApiResult<()> {
    let (member, user) = (member.clone(), user.clone());
    let lookup = (member.clone(), user.clone());
    let found = core.blocking(move |store| Ok(store.users(&lookup.0)?.into_iter().find(|u| u.id == lookup.1))).await?;
    let Some(found) = found else { return Err(ApiError::not_found("user of your member")) };
    password::check_for(&secret, &[&found.email, &found.display_name]).map_err(ApiError::invalid)?;
    let hash = core.compute(move || password::hash(&secret)).await?.map_err(ApiError::invalid)?;
    if !core.blocking(move |store| store.update_user(&member, &user, Some(hash), None, None)).await? {
        return Err(ApiError::not_found("user of your member"));
    }
    Ok(())
}

/// Disables a user (their sessions end at once) or enables them again; `NotFound` if `member` has no
/// such user.
pub async fn set_user_disabled(core: &Core, member: &MemberId, user: &UserId, disabled: bool) -> ApiResult<()> {
    let (member, user) = (member.clone(), user.clone());
    if !core.blocking(move |store| store.update_user(&member, &user, None, None, Some(disabled))).await? {
        return Err(ApiError::not_found("user of your member"));
    }
    Ok(())
}

/// Sets the time zone a user's pages show times in (an IANA name; `None`: the browser's); a name the
/// tz database does not know is refused, naming it.
pub async fn set_user_time_zone(core: &Core, member: &MemberId, user: &UserId, zone: Option<&str>) -> ApiResult<()> {
    let zone = zone.map(crate::zones::check).transpose().map_err(ApiError::invalid)?;
    let (member, user) = (member.clone(), user.clone());
    if !core.blocking(move |store| store.set_user_time_zone(&member, &user, zone)).await? {
        return Err(ApiError::not_found("user of your member"));
    }
    Ok(())
}

/// Sets the UI language a user's pages use (`None`: follow the browser).
pub async fn set_user_locale(core: &Core, member: &MemberId, user: &UserId, locale: Option<String>) -> ApiResult<()> {
    let (member, user) = (member.clone(), user.clone());
    core.blocking(move |store| store.update_user(&member, &user, None, Some(locale), None)).await?;
    Ok(())
}
