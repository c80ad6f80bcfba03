# Karavan web newsroom: Chinese (Simplified). Every message here exists in every locale (a test checks).

app-name = Karavan 卡拉万
sign-in = 登录
sign-out = 退出登录
email = 电子邮件
password = 密码
sign-in-failed = 电子邮件或密码错误。
signed-in-as = 当前用户：{ $name }
nav-wire = 电讯
nav-search = 搜索
nav-subscriptions = 订阅
nav-publish = 发稿
nav-admin = 管理
language = 语言
unread-count = { $count } 条未读
col-time = 时间
col-urgency = 紧急程度
col-member = 通讯社
col-language = 语言
col-headline = 标题
wire-empty = 您的电讯中还没有稿件。
keys-help = j / k：移动，Enter：打开
