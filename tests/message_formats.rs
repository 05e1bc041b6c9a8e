//! The message extractor on real lines of the formats people run: what is header is set aside,
//! what is message (exception classes above all) stays, and the level is read.
//!
//! Lines come from the real files of `../shared/datasets/realworld` (found there by their first
//! characters, so each case is a line some program wrote), and, for formats the corpus lacks,
//! from the issue's own report and the frameworks' default layouts.

use std::path::PathBuf;
use turbolog::detect::level::Level;
use turbolog::detect::message::extract;
use turbolog::{Engine, EngineConfig};

fn realworld(file: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/realworld").join(file);
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (tests need ../shared beside the repository)", p.display()));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// (file, how the line starts, how its message starts, its level)
const REAL: &[(&str, &str, &str, Option<Level>)] = &[
    // Spring Boot with a custom pattern: padded thread and logger columns
    ("java-spring-boot/logfile_java.0", "2025-01-24T07:00:30,227 INFO [main", "Starting FarmApplication v3.0.7", Some(Level::Info)),
    // Kafka (log4j `[%d] %p %m (%c)`), and its state-change log with bracketed level, thread, logger
    ("kafka/server-2.0.0.log", "[2018-10-17 12:04:41,718] INFO [GroupMetadataManager", "Removed 0 expired offsets in 0 milliseconds.", Some(Level::Info)),
    ("kafka/state-change-2.2.2.log", "[2020-04-23 00:28:21,796] [WARN ] [kafka-request-handler-7]", "[Broker id=1] Ignoring LeaderAndIsr request", Some(Level::Warn)),
    // Elasticsearch (log4j2 `[%d][%-5p][%-25c] [node] %m`)
    ("elasticsearch-server/elasticsearch-server-test.log", "[2018-07-03T11:45:48,548][WARN ][o.e.d.z.ZenDiscovery", "master left (reason = failed to ping", Some(Level::Warn)),
    ("elasticsearch-server/elasticsearch-multiline-log.log", "[2015-12-06 01:44:53,269][DEBUG]", "failed to put mappings on indices", Some(Level::Debug)),
    // klog behind journald, and behind a container runtime's timestamp
    ("klog/openshift-node-journal-kubelet-ip-10-0-135-228.log", "Nov 10 14:17:47.146551", "\"ContainerStatus from runtime service failed\"", Some(Level::Error)),
    ("klog/kube-controller-manager-errors.log", "2022-03-16T13:32:39.044141390Z I0316", "syncing garbage collector with updated resources", Some(Level::Info)),
    // Go zap console encoder (tab-separated) and logrus logfmt
    ("go-zap/logfile_zap_console.0", "2025-04-24T22:09:20.856Z\terror", "Exporting failed. Dropping data.", Some(Level::Error)),
    ("logfmt/logfile_logfmt.0", "time=\"2021-09-15T21:17:11.674149Z\" level=warning", "Failed to DeletePod in the provider", Some(Level::Warn)),
    // PHP: Laravel / Monolog `[%datetime%] %channel%.%level_name%: %message%`
    ("php-laravel/logfile_laravel.1", "[2025-01-02 11:19:06] laravel.EMERGENCY:", "Unable to create configured logger.", Some(Level::Critical)),
    // nginx and Apache error logs
    ("nginx-error/error.log", "2016/10/25 14:49:34 [error] 54053#0: *1", "open() \"/usr/local/Cellar/nginx/1.10.2_1/html/favicon.ico\" failed", Some(Level::Error)),
    ("apache-error/apache-error-test.log", "[Thu Jun 27 06:58:09.169510 2019] [include:warn]", "[client 67.43.156.12:12345] AH01374: mod_include:", Some(Level::Warn)),
    ("apache-error/ubuntu-2.2.22.log", "[Mon Dec 26 16:22:00 2016] [error] [client", "File does not exist: /var/www/favicon.ico", Some(Level::Error)),
    // PostgreSQL `%m [%p] %u@%d`, with a zone abbreviation
    ("postgresql/postgresql-ubuntu-9.5.log", "2017-04-07 22:45:30.218 CEST [22603] postgres@mydb ERROR:", "operator does not exist: jsonb @> at character 49", Some(Level::Error)),
    ("postgresql/postgresql-9.6-debian-with-slowlog.log", "2017-07-31 13:39:16.249 CEST [5407] postgres@users FATAL:", "database \"users\" does not exist", Some(Level::Critical)),
    ("postgresql/postgresql-9.6-debian-with-slowlog.log", "2017-07-31 13:36:43.557 CEST [4983] postgres@postgres LOG:", "duration: 37.118 ms", Some(Level::Info)),
    // MySQL 8 and MariaDB
    ("mysql-error/mysql-ubuntu-8.0.15.log", "2019-03-24T13:44:27.924508Z 5 [Warning]", "[Server] root@localhost is created with an empty password", Some(Level::Warn)),
    ("mysql-error/mysql-ubuntu-8.0.15.log", "2019-03-24T13:44:31.085670Z 0 [System]", "[Server] /usr/sbin/mysqld (mysqld 8.0.15) starting", Some(Level::Info)),
    // Redis 3, 1.2 and 2.4 on Windows: the level is a symbol
    ("redis/redis-darwin-3.0.2.log", "4961:M 30 May 12:50:13.463 #", "Server started, Redis version 3.0.2", Some(Level::Warn)),
    ("redis/redis-debian-1.2.6.log", "30 May 10:04:45 .", "0 clients connected (0 slaves)", Some(Level::Debug)),
    ("redis/redis-windows-2.4.6.log", "[2932] 31 May 04:32:08 -", "0 clients connected (0 slaves)", Some(Level::Trace)),
    // syslog RFC 3164 and RFC 3339 timestamps
    ("syslog-auth/secure-rhel7.log", "Feb 22 16:45:20 slave22 sshd[2738]: pam_", "pam_succeed_if(sshd:auth): requirement", None),
    ("syslog/suse-syslog.log", "2018-08-14T14:30:02.203151+02:00 linux-sqrz systemd[4179]:", "Stopped target Basic System.", None),
    // NATS, Icinga (`severity/Facility:`)
    ("nats/nats-log-test.log", "[1] 2019/02/06 07:20:08.510296 [TRC]", "172.18.0.1:38630 - cid:1", Some(Level::Trace)),
    ("icinga/icinga-main-test.log", "[2017-04-04 11:16:34 +0200] warning/PluginNotificationTask:", "Notification command for object", Some(Level::Warn)),
    // a Java exception with a syslog-style time: the class is the message
    ("multiline-stacktraces/fluent-bit-filter_multiline-test.log", "Dec 14 06:41:08 Exception", "Exception in thread \"main\" java.lang.RuntimeException: Something has gone wrong", None),
];

#[test]
fn real_lines_of_each_format() {
    let mut failures = Vec::new();
    for &(file, start, message, level) in REAL {
        let text = realworld(file);
        let line = text.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("{file} has no line starting {start:?}"));
        let m = extract(line);
        if !m.text.starts_with(message) || m.level != level {
            failures.push(format!("{file}: {line}\n  got {:?} {:?}\n  want {message:?}… {level:?}", m.text, m.level));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Formats the corpus has no file of: the issue's own catalina.out lines, and the default
/// layouts of the frameworks (Tomcat, Spring Boot, Python logging, Go, Rails, .NET, PHP, syslog).
const LAYOUTS: &[(&str, &str, Option<Level>)] = &[
    // the issue: Liferay on Tomcat, an exception class right after the `[Class:line]` bracket
    ("15:54:46,153 ERROR [ImageProcessorImpl:181] com.liferay.portlet.documentlibrary.NoSuchFileException: /home/liferay/data/document_library/10154/1.0",
     "com.liferay.portlet.documentlibrary.NoSuchFileException: /home/liferay/data/document_library/10154/1.0", Some(Level::Error)),
    ("2024-03-05 10:11:12,123 ERROR [main] java.lang.NullPointerException", "java.lang.NullPointerException", Some(Level::Error)),
    ("2024-03-05 10:11:12,123 WARN [pool-1-thread-1] com.zaxxer.hikari.pool.HikariPool - java.lang.IllegalStateException: Connection pool shut down",
     "java.lang.IllegalStateException: Connection pool shut down", Some(Level::Warn)),
    ("2024-03-05 10:11:12,123 ERROR [main] com.example.App: java.lang.OutOfMemoryError: Java heap space", "java.lang.OutOfMemoryError: Java heap space", Some(Level::Error)),
    // Tomcat OneLineFormatter `date level [thread] class.method message`; JUL's second line
    ("02-Dec-2024 10:00:00.123 SEVERE [main] org.apache.catalina.core.StandardService.startInternal Failed to start connector [Connector[HTTP/1.1-8080]]",
     "Failed to start connector [Connector[HTTP/1.1-8080]]", Some(Level::Error)),
    ("SEVERE: Exception looking up UserDatabase under key UserDatabase", "Exception looking up UserDatabase under key UserDatabase", Some(Level::Error)),
    // Spring Boot default console pattern
    ("2024-03-05 10:11:12.123  INFO 12345 --- [           main] o.s.b.w.embedded.tomcat.TomcatWebServer  : Tomcat started on port(s): 8080 (http)",
     "Tomcat started on port(s): 8080 (http)", Some(Level::Info)),
    ("2024-03-05 10:11:12.123 ERROR 12345 --- [nio-8080-exec-1] o.a.c.c.C.[.[.[/].[dispatcherServlet]    : Servlet.service() threw exception",
     "Servlet.service() threw exception", Some(Level::Error)),
    // Python logging: basicConfig's `LEVEL:name:message`, and a bare exception after a time
    ("ERROR:root:ValueError: invalid literal for int() with base 10: 'x'", "ValueError: invalid literal for int() with base 10: 'x'", Some(Level::Error)),
    ("2024-03-05 10:11:12 ValueError: invalid literal for int()", "ValueError: invalid literal for int()", None),
    // Go: the standard logger with a panic, klog on its own, logrus text on a terminal
    ("2024/03/05 10:11:12 panic: runtime error: index out of range [5] with length 3", "panic: runtime error: index out of range [5] with length 3", Some(Level::Critical)),
    ("E1202 10:00:00.000000       1 file.go:42] Failed to list *v1.Pod: connection refused", "Failed to list *v1.Pod: connection refused", Some(Level::Error)),
    ("INFO[0000] Starting server                               port=8080", "Starting server                               port=8080", Some(Level::Info)),
    // Ruby Logger (Rails)
    ("E, [2024-03-05T10:11:12.123456 #1234] ERROR -- : ActiveRecord::RecordNotFound (Couldn't find User with 'id'=1):",
     "ActiveRecord::RecordNotFound (Couldn't find User with 'id'=1):", Some(Level::Error)),
    ("I, [2024-03-05T10:11:12.123456 #1234]  INFO -- : Completed 200 OK in 12ms", "Completed 200 OK in 12ms", Some(Level::Info)),
    // .NET: the console logger's first line, and Serilog's default
    ("fail: Microsoft.AspNetCore.Server.Kestrel[13]", "Microsoft.AspNetCore.Server.Kestrel[13]", Some(Level::Error)),
    ("2024-03-05 10:11:12.123 +00:00 [ERR] System.InvalidOperationException: Unable to resolve service for type 'IFoo'",
     "System.InvalidOperationException: Unable to resolve service for type 'IFoo'", Some(Level::Error)),
    // PHP's own error log
    ("[05-Mar-2024 10:11:12 UTC] PHP Fatal error:  Uncaught Error: Call to undefined function foo() in /var/www/index.php:3",
     "Uncaught Error: Call to undefined function foo() in /var/www/index.php:3", Some(Level::Critical)),
    // RFC 5424
    ("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"] An application event log entry",
     "An application event log entry", Some(Level::Notice)),
    // a logger with no message after it is the message
    ("2024-03-05 10:11:12,123 INFO com.example.Foo", "com.example.Foo", Some(Level::Info)),
    // the level first, then the time: log4j `%-5p %d [%t] %c - %m`, Django's documented
    // `{levelname} {asctime} {module} {process:d} {thread:d} {message}`
    ("INFO  2024-03-05 10:11:12,123 [main] com.example.Foo - Started in 3 s", "Started in 3 s", Some(Level::Info)),
    ("ERROR 2024-03-05 10:11:12,123 log 1234 140000 Internal Server Error: /polls/", "log 1234 140000 Internal Server Error: /polls/", Some(Level::Error)),
    ("ERROR 404 page not found", "404 page not found", Some(Level::Error)),
    // Django's runserver (`django.server`: `[{server_time}] {message}`)
    ("[05/Mar/2024 10:11:12] \"GET /admin/ HTTP/1.1\" 302 0", "\"GET /admin/ HTTP/1.1\" 302 0", None),
    // Windows CBS (loghub's Windows): the level after the time, the component stays with the message
    ("2016-09-28 04:30:31, Error                 CSI    00000001@2016/9/27:20:30:31.455 WcpInitialize (wcp.dll version 0.0.0.6) called",
     "CSI    00000001@2016/9/27:20:30:31.455 WcpInitialize (wcp.dll version 0.0.0.6) called", Some(Level::Error)),
];

#[test]
fn framework_default_layouts() {
    let mut failures = Vec::new();
    for &(line, message, level) in LAYOUTS {
        let m = extract(line);
        if m.text != message || m.level != level {
            failures.push(format!("{line}\n  got {:?} {:?}\n  want {message:?} {level:?}", m.text, m.level));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The issue's report: an exception-only line kept its class out of the template and was not
/// flagged. It must keep the class and be flagged as new trouble among ordinary lines.
#[test]
fn exception_only_line_keeps_its_class_and_is_flagged() {
    let mut engine = Engine::new(EngineConfig::default());
    for i in 0..3000 {
        engine.process_line(&format!("2024-03-05 10:11:{:02},123 INFO [main] com.example.Orders - order {i} placed", i % 60));
    }
    let v = engine.process_line("2024-03-05 10:12:00,000 ERROR [main] java.lang.NullPointerException");
    assert_eq!(engine.template_text(v.template_id), "java.lang.NullPointerException");
    assert!(v.anomaly, "{v:?}");
    let v = engine.process_line("2024-03-05 10:12:01,000 WARN [pool-1-thread-1] com.zaxxer.hikari.pool.HikariPool - java.lang.IllegalStateException: Connection pool shut down");
    assert_eq!(engine.template_text(v.template_id), "java.lang.IllegalStateException: Connection pool shut down");
    assert!(v.anomaly, "{v:?}");
}

/// Node's bunyan (and pino, which writes the same `level`/`msg` fields): real records of
/// realworld/json-lines, read as `scan` and `filter` read a JSON record: `msg` is the message and
/// the number is the level on bunyan's scale (10 trace … 60 fatal).
#[test]
fn bunyan_records_give_msg_and_their_numeric_level() {
    let text = realworld("json-lines/logfile_bunyan.0");
    let mut n = 0;
    for line in text.lines() {
        let obj = turbolog::codec::ndjson::parse_object(line).unwrap().unwrap();
        let r = turbolog::codec::ndjson::record(&obj, &[]).unwrap();
        assert_eq!(r.message, obj["msg"].as_str().unwrap(), "{line}");
        let want = match obj["level"].as_u64().unwrap() {
            10..=19 => Level::Trace,
            20..=29 => Level::Debug,
            30..=39 => Level::Info,
            40..=49 => Level::Warn,
            50..=59 => Level::Error,
            _ => Level::Critical,
        };
        assert_eq!(r.level, Some(want), "{line}");
        n += 1;
    }
    assert!(n >= 10, "{n} bunyan records");
}

/// JSON loggers the corpus has no file of, as their documentation shows their output: pino
/// (numeric level), winston (`message`), zap's production encoder (`msg`, `ts`) and logrus's
/// JSON formatter (`warning`, `fatal`). The message is the logger's message field; the level
/// field beats any word inside the message.
#[test]
fn json_loggers_give_their_message_and_level() {
    const RECORDS: &[(&str, &str, Level)] = &[
        (r#"{"level":30,"time":1531171074631,"msg":"hello world","pid":657,"hostname":"Davids-MBP-3.fritz.box"}"#, "hello world", Level::Info),
        (r#"{"level":50,"time":1531171082399,"msg":"request failed: ECONNREFUSED","pid":657,"hostname":"Davids-MBP-3.fritz.box"}"#, "request failed: ECONNREFUSED", Level::Error),
        (r#"{"level":"info","message":"Error budget report sent","service":"user-service"}"#, "Error budget report sent", Level::Info),
        (r#"{"level":"error","message":"connect ECONNREFUSED 127.0.0.1:5432","service":"user-service","timestamp":"2024-03-05T10:11:12.123Z"}"#, "connect ECONNREFUSED 127.0.0.1:5432", Level::Error),
        (r#"{"level":"info","ts":1600000000.123,"caller":"main.go:10","msg":"failed to fetch URL","url":"http://example.com","attempt":3}"#, "failed to fetch URL", Level::Info),
        (r#"{"level":"warning","msg":"The group's number increased tremendously!","number":122,"omg":true,"time":"2014-03-10 19:57:38.562471297 -0400 EDT"}"#, "The group's number increased tremendously!", Level::Warn),
        (r#"{"level":"fatal","msg":"The ice breaks!","number":100,"omg":true,"time":"2014-03-10 19:57:38.562543128 -0400 EDT"}"#, "The ice breaks!", Level::Critical),
    ];
    for &(line, message, level) in RECORDS {
        let obj = turbolog::codec::ndjson::parse_object(line).unwrap().unwrap();
        let r = turbolog::codec::ndjson::record(&obj, &[]).unwrap();
        assert_eq!((r.message.as_ref(), r.level), (message, Some(level)), "{line}");
    }
}
