# Karavan web newsroom: Tajik. Every message here exists in every locale (a test checks).

app-name = Корвон
sign-in = Воридшавӣ
sign-out = Баромад
email = Почтаи электронӣ
password = Рамз
sign-in-failed = Почтаи электронӣ ё рамз нодуруст аст.
signed-in-as = Шумо ҳамчун { $name } ворид шудед
nav-wire = Навор
nav-search = Ҷустуҷӯ
nav-subscriptions = Обунаҳо
nav-publish = Нашр
nav-admin = Маъмурият
language = Забон
unread-count = Хонданашуда: { $count }
col-time = Вақт
col-urgency = Фаврият
col-member = Агентӣ
col-language = Забон
col-headline = Сарлавҳа
wire-empty = Дар навори шумо ҳоло чизе нест.
keys-help = j / k: гузаштан, Enter: кушодан
