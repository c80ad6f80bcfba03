# Karavan web newsroom: Kazakh. Every message here exists in every locale (a test checks).

app-name = Керуен
sign-in = Кіру
sign-out = Шығу
email = Электрондық пошта
password = Құпиясөз
sign-in-failed = Электрондық пошта немесе құпиясөз қате.
signed-in-as = { $name } ретінде кірдіңіз
nav-wire = Лента
nav-search = Іздеу
nav-subscriptions = Жазылымдар
nav-publish = Жариялау
nav-admin = Әкімшілік
language = Тіл
unread-count = Оқылмаған: { $count }
col-time = Уақыт
col-urgency = Шұғылдығы
col-member = Агенттік
col-language = Тіл
col-headline = Тақырып
wire-empty = Лентаңызда әзірге ештеңе жоқ.
keys-help = j / k: жылжу, Enter: ашу
