# Karavan web newsroom: Turkmen. Every message here exists in every locale (a test checks).

app-name = Kerwen
sign-in = Giriş
sign-out = Çykyş
email = E-poçta
password = Açar sözi
sign-in-failed = E-poçta ýa-da açar sözi nädogry.
signed-in-as = { $name } hökmünde girdiňiz
nav-wire = Lenta
nav-search = Gözleg
nav-subscriptions = Abunalyklar
nav-publish = Çap etmek
nav-admin = Dolandyryş
language = Dil
unread-count = Okalmadyk: { $count }
col-time = Wagt
col-urgency = Gyssaglyk
col-member = Agentlik
col-language = Dil
col-headline = Sözbaşy
wire-empty = Lentaňyzda entek hiç zat ýok.
keys-help = j / k: geçmek, Enter: açmak
