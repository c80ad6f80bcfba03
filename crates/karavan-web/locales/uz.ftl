# Karavan web newsroom: Uzbek (Latin). Every message here exists in every locale (a test checks).

app-name = Karvon
sign-in = Kirish
sign-out = Chiqish
email = Elektron pochta
password = Parol
sign-in-failed = Elektron pochta yoki parol notoʻgʻri.
signed-in-as = Siz { $name } sifatida kirdingiz
nav-wire = Lenta
nav-search = Qidiruv
nav-subscriptions = Obunalar
nav-publish = Nashr qilish
nav-admin = Boshqaruv
language = Til
unread-count = Oʻqilmagan: { $count }
col-time = Vaqt
col-urgency = Shoshilinchlik
col-member = Agentlik
col-language = Til
col-headline = Sarlavha
wire-empty = Lentangizda hozircha hech narsa yoʻq.
keys-help = j / k: oʻtish, Enter: ochish
