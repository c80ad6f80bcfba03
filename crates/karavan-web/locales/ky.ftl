# Karavan web newsroom: Kyrgyz. Every message here exists in every locale (a test checks).

app-name = Кербен
sign-in = Кирүү
sign-out = Чыгуу
email = Электрондук почта
password = Сырсөз
sign-in-failed = Электрондук почта же сырсөз туура эмес.
signed-in-as = { $name } катары кирдиңиз
nav-wire = Тасма
nav-search = Издөө
nav-subscriptions = Жазылуулар
nav-publish = Жарыялоо
nav-admin = Администрация
language = Тил
unread-count = Окулбаган: { $count }
col-time = Убакыт
col-urgency = Шашылыштыгы
col-member = Агенттик
col-language = Тил
col-headline = Аталыш
wire-empty = Тасмаңызда азырынча эч нерсе жок.
keys-help = j / k: жылдыруу, Enter: ачуу
