# Karavan web newsroom: Russian. Every message here exists in every locale (a test checks).

app-name = Караван
sign-in = Войти
sign-out = Выйти
email = Электронная почта
password = Пароль
sign-in-failed = Неверный адрес почты или пароль.
signed-in-as = Вы вошли как { $name }
nav-wire = Лента
nav-search = Поиск
nav-subscriptions = Подписки
nav-publish = Публикация
nav-admin = Администрирование
language = Язык
unread-count = Непрочитанных: { $count }
col-time = Время
col-urgency = Срочность
col-member = Агентство
col-language = Язык
col-headline = Заголовок
wire-empty = В вашей ленте пока ничего нет.
keys-help = j / k: перемещение, Enter: открыть
