# Karavan web newsroom: Russian. Every message here exists in every locale (a test checks).

app-name = Караван
sign-in = Войти
sign-out = Выйти
email = Электронная почта
password = Пароль
sign-in-failed = Неверный адрес почты или пароль.
sign-in-throttled = Слишком много неудачных попыток входа. Повторите через { $seconds } с.
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
keys-help = Клавиши: j / k — перемещение, Enter — открыть, n — более ранние материалы, p — самые новые материалы
item-versions = Версии
item-version = Версия { $name }
item-download = Скачать ninjs
item-download-newsml = Скачать NewsML-G2
item-killed = Материал отозван агентством. Не используйте его.
item-not-found = Такого материала нет, или он не открыт вашему агентству.
item-embargoed = Эмбарго до { $name }
item-right = Ваше право
item-subjects = Темы
item-by = Автор
search-label = Поиск по ленте
search-button = Найти
search-results = Результатов: { $count }
search-none = Ничего не найдено.
search-next-page = Следующая страница
search-sort-relevance = Самые релевантные
search-sort-date = Самые новые
search-any-language = Любой язык
search-error = Не удалось разобрать запрос: { $name }
subs-none = Подписок пока нет.
subs-name = Название
subs-query = Поисковый запрос
subs-webhook = Адрес вебхука (необязательно)
subs-webhook-help = Оставьте пустым, чтобы читать только ленту изменений или Atom.
subs-events = События
subs-create = Создать подписку
subs-created = Подписка создана. Скопируйте адрес ленты сейчас: он показывается один раз.
subs-feed = Лента Atom
subs-deliveries = Доставки
subs-state = Состояние
subs-attempts = Попытки
subs-forbidden = Изменять подписки могут только редакторы и администраторы.
event-publish = Новый материал
event-correction = Исправление
event-kill = Отзыв
event-embargo_release = Снятие эмбарго
publish-title = Опубликовать материал
publish-headline = Заголовок
publish-body = Текст
publish-subjects = Темы
publish-subjects-help = Через запятую, например: экономика, транспорт
publish-embargo = Эмбарго до (UTC, необязательно)
publish-submit = Опубликовать
publish-correct = Исправить материал
publish-kill = Отозвать материал
publish-kill-reason = Причина отзыва
publish-forbidden = Публиковать могут только редакторы и администраторы.
editor-bold = Жирный
editor-italic = Курсив
editor-list = Список
admin-members = Участники
admin-users = Пользователи
admin-keys = Ключи API
admin-agreements = Соглашения
admin-add-user = Добавить пользователя
admin-create-key = Создать ключ
admin-key-once = Новый ключ (показывается один раз):
admin-revoke = Отозвать
admin-add-agreement = Добавить соглашение
admin-grantee = Кому открыто
admin-everyone = Всем участникам
admin-right = Право
admin-delay = Задержка (минуты)
admin-role = Роль
admin-label = Метка
admin-forbidden = Эта страница доступна только администраторам вашего агентства.
admin-country = Страна
admin-state-active = действует
admin-state-revoked = отозван
item-changes = Изменения по сравнению с версией { $name }
search-save = Сохранить поиск
search-saved = Сохранённые поиски
search-save-name = Название поиска
right-view = просмотр
right-republish = перепечатка
role-reader = читатель
role-editor = редактор
role-admin = администратор
state-pending = ожидает
state-delivered = доставлено
state-dead = не доставлено
state-withdrawn = отозвано
state-feed = в ленте
state-active = активен
state-disabled = отключён
subs-save = Сохранить изменения
subs-delete = Удалить подписку
search-sort = Сортировка
wire-filter = Показать
publish-rights = Условия использования
publish-rights-help = Кто и как может использовать материал (например: только для участников обмена)
admin-add-member = Добавить агентство
admin-contact = Публичный контакт
admin-languages-help = Коды языков через запятую, например: kk, ru
subs-rotate = Новый адрес ленты (старый перестанет работать)
admin-disable = Отключить
admin-enable = Включить
admin-feeds = Ленты партнёров (RSS / Atom)
feed-url = Адрес ленты
feed-last-success = Последний успех
feed-last-error = Последняя ошибка
feed-items = Материалы
feed-interval = Каждые (минут)
admin-add-feed = Добавить ленту
feed-status-active = работает
feed-status-failing = ошибки
feed-status-paused = приостановлена
admin-pause = Приостановить
admin-resume = Возобновить
item-language-identified = Язык определён по тексту: { $name }
item-language-contradicts = Указан язык { $declared }, но текст написан на { $detected } (уверенность { $confidence })
item-script = Письменность
item-script-original = Как опубликовано
item-script-Latn = Латиница
item-script-Cyrl = Кириллица
item-similar = Похожие материалы на всех языках
item-translate = Читать на
item-translate-original = Как опубликовано
item-translated = Машинный перевод с { $from }, модель { $model }
item-body-queued = Перевод текста в очереди (около { $seconds } с)
item-body-queued-unknown = Перевод текста в очереди
item-body-running = Текст переводится… (около { $seconds } с)
item-body-running-unknown = Текст переводится…
item-body-failed = Текст не удалось перевести
item-body-original = Пока перевод не готов, ниже показан текст оригинала.
item-translate-failed = Сейчас материал не удалось перевести; он показан как опубликован.
search-mode = Ранжирование
search-mode-keyword = По словам
search-mode-semantic = По смыслу (все языки)
search-mode-hybrid = По словам и смыслу

# The wire desk
wire-clear-filters = Сбросить фильтры
wire-killed = Отозвано
wire-correction = Исправление
wire-embargoed = Эмбарго до { $time }
wire-machine-translation = Машинный перевод ({ $model })
wire-mt = МП
wire-no-match = Нет материалов, подходящих под эти фильтры.
wire-no-older = Более ранних материалов нет.
wire-pages = Страницы ленты
wire-newest = Самые новые
wire-older = Более ранние
skip-to-content = Перейти к содержанию
publish-headline-required = Напишите заголовок (не только пробелы).
publish-body-required = Напишите текст материала.

# Refusals and confirmations
refused-title = Действие не разрешено
refused-stale-form = Эта форма устарела или отправлена не с этой страницы. Вернитесь, обновите страницу и попробуйте снова.
refused-role = Ваша роль не позволяет это сделать. Обратитесь к администратору вашего агентства.
refused-own-account = Нельзя отключить собственную учётную запись.
refused-back = Вернуться к ленте
confirm-title = Вы уверены?
confirm-cancel = Отмена
confirm-kill = Отозвать этот материал? Копии у всех партнёров будут отозваны с вашей причиной; отменить это нельзя.
confirm-kill-reason-required = Укажите причину отзыва: партнёры её увидят.
confirm-revoke-key = Отозвать этот API-ключ? Программы, которые его используют, сразу перестанут работать.
confirm-revoke-agreement = Отозвать это соглашение об обмене? Партнёр перестанет видеть ваши материалы.
confirm-delete-feed = Удалить эту ленту? Её материалы останутся, но читаться она больше не будет.
confirm-delete-subscription = Удалить эту подписку? Доставка по ней прекратится.
admin-delete = Удалить
subs-webhook-refused = Сервер не будет отправлять вебхуки на этот адрес. Укажите публичный адрес http:// или https:// в интернете, без имени пользователя и пароля.

# The wire desk's filters and reading pane
filters-title = Фильтры
filter-agency = Агентство
filter-any-agency = Любое агентство
filter-subject = Тема
filter-any-subject = Любая тема
filter-any-urgency = Любая срочность
filter-urgency-flash = Молнии и срочные (1–2)
filter-urgency-high = 1–3
filter-urgency-all = 1–5
filter-date = День
filter-date-help = Только материалы за этот день
pane-title = Область чтения
pane-empty = Выберите материал (щелчком или клавишами j / k), чтобы прочитать его здесь.
pane-loading = Загрузка…
pane-failed = Не удалось загрузить материал.
pane-open = Открыть полную страницу

# IPTC Media Topics (top level), for subject pickers and names
topic-01000000 = искусство, культура, развлечения и СМИ
topic-02000000 = преступность, право и правосудие
topic-03000000 = катастрофы, аварии и чрезвычайные происшествия
topic-04000000 = экономика, бизнес и финансы
topic-05000000 = образование
topic-06000000 = окружающая среда
topic-07000000 = здоровье
topic-08000000 = истории из жизни
topic-09000000 = труд
topic-10000000 = образ жизни и досуг
topic-11000000 = политика
topic-12000000 = религия
topic-13000000 = наука и технологии
topic-14000000 = общество
topic-15000000 = спорт
topic-16000000 = конфликты, война и мир
topic-17000000 = погода

# API error codes, as the newsroom says them
error-unauthorized = Вы не вошли в систему, или ваш ключ недействителен.
error-forbidden = Это не разрешено для вашей роли или вашего агентства.
error-not_found = Не найдено или не открыто вашему агентству.
error-route_not_found = Такой страницы нет.
error-method_not_allowed = Здесь это действие невозможно.
error-item_killed = Этот материал отозван опубликовавшим его агентством.
error-invalid_json = Файл не является корректным JSON.
error-invalid_document = Не удалось прочитать документ.
error-invalid_request = Одно из значений недопустимо.
error-invalid_ninjs = Материал не соответствует формату ninjs.
error-version_conflict = Эта версия уже опубликована с другим содержанием.
error-stale_version = Существует более новая версия этого материала.
error-conflict = Это противоречит уже существующим данным.
error-payload_too_large = Объём превышает допустимый для сервера.
error-request_timeout = Загрузка заняла слишком много времени.
error-unsupported_media_type = Файлы такого типа не принимаются.
error-internal = На сервере произошла ошибка. Повторите попытку; если ошибка повторится, сообщите администратору.
error-unavailable = Сервер завершает работу. Повторите попытку чуть позже.
error-storage_full = Хранилище сервера заполнено; ничего не сохранено. Сообщите администратору.
error-model_not_installed = Для этого нужна языковая модель, которая не установлена на этом сервере.
error-detail = Подробности: { $name }

# Search facets and saved searches
search-facet-agency = Агентство
search-facet-language = Язык
search-facet-subject = Тема
search-facet-date = День
search-filter-remove = Убрать этот фильтр
search-browse-help = Оставьте строку поиска пустой, чтобы просмотреть всё, что соответствует фильтрам.
search-from = С
search-to = По
search-saved-delete = Удалить
confirm-delete-saved-search = Удалить этот сохранённый поиск? Подписки, созданные на его основе, продолжат работать.
search-saved-none = Сохранённых поисков пока нет.

# The item page
item-original = Оригинал
item-side-by-side = Показать оригинал рядом с переводом
item-similar-none = Похожих материалов не найдено.
item-republish = Перепечатать
item-credit-line = Указание источника
item-copy-with-credit = Копировать текст с указанием источника
item-copied = Скопировано в буфер обмена.
item-republish-not-allowed = Ваше соглашение с этим агентством разрешает только просмотр, без перепечатки.
item-no-model = Машинный перевод на этом сервере не настроен. Администратор может установить модель: см. раздел "Machine translation" в README.
item-summary = Краткое содержание
item-slugline = Слаг
item-genre = Жанр
item-place = Место

# Publishing
publish-summary = Краткое содержание (необязательно)
publish-byline = Подпись автора (необязательно)
publish-slugline = Слаг (необязательно)
publish-genre = Жанр
publish-genre-none = Без жанра
genre-Current = Оперативные новости
genre-Analysis = Аналитика
genre-Background = Справка
genre-Feature = Очерк
genre-Interview = Интервью
genre-Opinion = Мнение
genre-Profile = Портрет
publish-place = Место (город, необязательно)
publish-urgency = Срочность
publish-language = Язык
publish-other-subjects = Другие темы (необязательно)
publish-preview = Предпросмотр
publish-preview-title = Предпросмотр: так материал увидят партнёры
publish-upload-title = Опубликовать файлы
publish-upload-help = Один или несколько файлов ninjs (JSON) или NewsML-G2 (XML); каждый проверяется и публикуется так же, как материал, отправленный через API.
publish-upload-files = Файлы
publish-upload-submit = Загрузить и опубликовать
publish-upload-done = { $count ->
    [one] Опубликован { $count } материал.
    [few] Опубликовано { $count } материала.
    [many] Опубликовано { $count } материалов.
   *[other] Опубликовано { $count } материала.
}
publish-upload-failed = { $name }: не опубликован.
item-credit = Источник: { $name }
error-title = Не получилось
time-minutes-ago = { $count } мин назад
time-just-now = только что
subs-test = Отправить тестовую доставку
subs-test-delivered = Тест доставлен: HTTP { $status } за { $ms } мс.
subs-test-failed = Тест не доставлен (HTTP { $status }, { $ms } мс).
filter-kills-only = Только уведомления об отзыве
nav-kills = Уведомления об отзыве
admin-incoming = Открыто вашему агентству
admin-grantor = Кто делится
admin-all-subjects = Все темы
admin-no-incoming = Пока ни одно агентство не открыло вам свои материалы.

# Translation settings
nav-translation = Перевод
translation-title = Машинный перевод
translation-model = Модель перевода: { $model }
translation-read = Языки, на которых читает ваше агентство
translation-read-help = Материалы на других языках переводятся на эти языки: заголовки — сразу по поступлении, тексты — в порядке срочности, а также когда кто-то открывает материал.
translation-read-save = Сохранить языки
translation-queue = Очередь перевода
translation-queued = Ожидают
translation-heads = заголовков: { $count }
translation-bodies = текстов: { $count }
translation-running = Переводятся сейчас
translation-done = Переведено
translation-failed = С ошибкой
translation-average = Среднее время
translation-average-parts = заголовок { $head } с, текст { $body } с
translation-glossaries = Глоссарии
translation-glossaries-help = Как в переводе должны передаваться имена, названия и термины, для каждой языковой пары: по одной строке «термин = перевод».
translation-terms = { $count ->
    [one] { $count } термин
    [few] { $count } термина
    [many] { $count } терминов
   *[other] { $count } термина
}
translation-terms-label = Термины (по одной строке «термин = перевод»)
translation-glossary-save = Сохранить глоссарий
translation-glossary-delete = Удалить глоссарий
translation-no-glossaries = Глоссариев пока нет.
translation-glossary-new = Новый глоссарий
translation-from = С языка
translation-to = На язык
confirm-delete-glossary = Удалить этот глоссарий? Переводы, выполненные с этого момента, не будут его учитывать.
subs-changes-help = Программы читают изменения этой подписки с ключом API, от старых к новым: { $name }

## Personal settings
nav-settings = Настройки
settings-title = Ваши настройки
settings-saved = Настройки сохранены.
settings-time-zone = Часовой пояс
settings-time-zone-browser = Часовой пояс браузера
settings-time-zone-help = Время на всех страницах и границы дня в ленте определяются этим поясом. Пояс вашего браузера:
settings-member-zones = Государства-участники
settings-other-zones = Другие пояса
settings-language = Язык интерфейса
settings-language-browser = Язык браузера
settings-save = Сохранить настройки
confirm-disable-user = Отключить этого пользователя? Он сразу выйдет из системы и не сможет войти, пока его снова не включат.
confirm-rotate-feed-token = Создать новый адрес ленты? Все, кто читает по старому адресу, перестанут получать материалы, пока не получат новый.
publish-upload-too-large = Слишком большой объём: за один раз можно загрузить не более { $size }.

## Stories
nav-stories = Сюжеты
stories-help = Каждый сюжет объединяет материалы об одном событии от всех агентств и на всех языках, доступных вашему агентству.
stories-sort = Порядок сюжетов
stories-sort-activity = Самые свежие
stories-sort-size = Крупнейшие за неделю
stories-sort-growth = Набирающие обороты
stories-col-story = Сюжет
stories-col-items = Материалы
stories-col-agencies = Агентства
stories-col-last = Последний материал
stories-more = Ещё сюжеты
stories-none = Сюжетов пока нет: опубликованные материалы объединяются в сюжеты за несколько секунд.
stories-none-filtered = Нет сюжетов, подходящих под эти фильтры.
story-breaking = Срочно
story-first-report = Первое сообщение
story-first-headline = Первый заголовок
story-coverage = Освещение по агентствам
story-timeline = Хронология
item-story = Сюжет
item-story-items = { $count ->
    [one] { $count } материал
    [few] { $count } материала
    [many] { $count } материалов
   *[other] { $count } материала
}
