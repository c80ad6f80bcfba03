# Karavan web newsroom: English. Every message here exists in every locale (a test checks).

app-name = Karavan
sign-in = Sign in
sign-out = Sign out
email = Email
password = Password
sign-in-failed = Wrong email or password.
signed-in-as = Signed in as { $name }
nav-wire = Wire
nav-search = Search
nav-subscriptions = Subscriptions
nav-publish = Publish
nav-admin = Administration
language = Language
unread-count = { $count } unread
col-time = Time
col-urgency = Urgency
col-member = Agency
col-language = Language
col-headline = Headline
wire-empty = Nothing on your wire yet.
keys-help = j / k: move, Enter: open
