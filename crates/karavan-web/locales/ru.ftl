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
