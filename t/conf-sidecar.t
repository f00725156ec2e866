#!/usr/bin/perl

# conf/sidecar/, the gateway beside one app, run for real: redis-server
# started with conf/sidecar/redis.conf (its port, dir, log and ACL file
# moved here on the command line, the ACL file made as the file's header
# says), the mock providers and tools of FoxGov::Test::Upstream standing
# for OpenAI, ServiceNow and Slack, conf/sidecar/nginx.conf with its
# /etc/foxgov files made here (real keys, the itsm-triage bundle built and
# signed) and its upstreams moved to the mock.  Then: the Redis keeps what
# the evidence needs (AOF fsync always, noeviction, loopback, a password,
# no dangerous commands); a model call and tool calls go through with the
# provider's key put in by the gateway; strict mode: a forwarded call's
# decision is in Redis before its answer; another tenant gets none of the
# app's keys; foxgov-ledgerd --once makes a ledger foxgov verify accepts.
# And the config refuses to start, naming the line, with a credential
# file missing or Redis named by a host name.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::ConfExample qw(move_conf paths_left directives);
use FoxGov::Test::Nginx qw(repo_root module_path nginx_binary
    http_status http_header http_body);
use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov);
use FoxGov::Test::Ledgerd;
use FoxGov::Test::Redis;
use FoxGov::Test::Upstream;

my $top = repo_root();
my $module = module_path();

plan skip_all => "$module is missing: run make" unless -f $module;
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => nginx_binary() . ' is missing or not executable'
    unless -x nginx_binary();
plan skip_all => 'foxgov-ledgerd not built'
    unless -x FoxGov::Test::Ledgerd::bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};

my $JSON = JSON::PP->new->utf8->canonical;

sub slurp { open my $f, '<:raw', $_[0] or die "$_[0]: $!"; local $/; <$f> }
sub spew { open my $f, '>:raw', $_[0] or die "$_[0]: $!"; print $f $_[1]; close $f }

my $t = FoxGov::Test::Nginx->new();
my $d = $t->testdir();
my $etc = "$d/foxgov-etc";
make_path("$etc/credentials", "$d/keys", "$d/logs", "$d/spool", "$d/redis");

my ($rc, $out, $err);

# --------------------------------------------------- Redis, from the file

my $rconf = slurp("$top/conf/sidecar/redis.conf");
my %rset = map { /^(\S+)\s+(.*?)\s*$/ ? ($1 => $2) : () }
           grep { !/^\s*(?:#|$)/ } split /\n/, $rconf;
is($rset{appendonly}, 'yes', 'redis.conf: appendonly yes');
is($rset{appendfsync}, 'always', 'redis.conf: appendfsync always');
is($rset{'maxmemory-policy'}, 'noeviction', 'redis.conf: noeviction');
is($rset{'no-appendfsync-on-rewrite'}, 'no', 'redis.conf: fsync during rewrites');
like($rset{bind} // '', qr/^127\.0\.0\.1(?: -::1)?$/, 'redis.conf: loopback only');
is($rset{'protected-mode'}, 'yes', 'redis.conf: protected-mode yes');
ok($rset{aclfile}, 'redis.conf: an ACL file holds the password');
for my $k (qw(appendonly appendfsync maxmemory-policy bind protected-mode
              aclfile maxmemory)) {
    # in a paragraph that starts with a comment
    ok($rconf =~ /(?:^#[^\n]*\n)+(?:^[^#\n][^\n]*\n)*\Q$k\E /m,
       "redis.conf: $k has a comment");
}

# the password and the ACL file, as the header of redis.conf says
my $password = join '', map { ('a' .. 'f', 0 .. 9)[rand 16] } 1 .. 64;
spew("$etc/redis.password", "$password\n");
chmod 0640, "$etc/redis.password";
my ($acl_line) = $rconf =~ /^#\s+printf '(user default [^']*?)\\n'/m;
ok($acl_line, 'redis.conf says how to write the ACL line');
(my $acl = $acl_line // '') =~ s/%s/sha256_hex($password)/e;
# and, for this test only, a user that may read the running config
my $admin = join '', map { ('a' .. 'f', 0 .. 9)[rand 16] } 1 .. 32;
spew("$d/redis/users.acl", "$acl\nuser test-admin on >$admin ~* +\@all\n");

my $redis = FoxGov::Test::Redis->new(dir => "$d/redis",
                                     password => $password);
sub start_redis {
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$d/redis/redis.out";
        open STDERR, '>&', \*STDOUT;
        exec { 'redis-server' } 'redis-server', "$top/conf/sidecar/redis.conf",
            '--port', $redis->port, '--dir', "$d/redis",
            '--logfile', "$d/redis/redis.log",
            '--aclfile', "$d/redis/users.acl", '--daemonize', 'no'
            or POSIX::_exit(127);
    }
    $redis->{pid} = $pid;       # FoxGov::Test::Redis stops it at the end
    my $deadline = time() + 10;
    my $up;
    while (!$up && time() < $deadline) {
        $up = eval { my $c = $redis->client; $c->ping; $c->quit; 1 };
        last if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05 unless $up;
    }
    return $up;
}
ok(start_redis(), 'redis-server runs conf/sidecar/redis.conf')
    or BAIL_OUT('redis: ' . slurp("$d/redis/redis.log"));

my $cli = "redis-cli -p ${\ $redis->port}";
{
    local $ENV{REDISCLI_AUTH} = $admin;
    my %live;
    for my $k (qw(appendonly appendfsync maxmemory-policy protected-mode
                  bind)) {
        my @kv = split /\n/, `$cli --user test-admin config get $k 2>&1`;
        $live{$k} = $kv[1];
    }
    is($live{appendfsync}, 'always', 'the running Redis: appendfsync always');
    is($live{'maxmemory-policy'}, 'noeviction', '... noeviction');
    is($live{appendonly}, 'yes', '... appendonly');
    is($live{'protected-mode'}, 'yes', '... protected-mode');
    like($live{bind} // '', qr/^127\.0\.0\.1\b/, '... bound to loopback');
}
like(`$cli ping 2>&1`, qr/NOAUTH/, '... refuses a client without the password');
{
    local $ENV{REDISCLI_AUTH} = $password;
    like(`$cli flushall 2>&1`, qr/NOPERM/, '... FLUSHALL is refused with it');
    like(`$cli config set appendfsync no 2>&1`, qr/NOPERM/, '... and CONFIG SET');
    like(`$cli set other-key 1 2>&1`, qr/NOPERM/, '... and a key outside foxgov:*');
}

# ------------------------------------------------------- the mocks

my $up = FoxGov::Test::Upstream->new(port => $t->port(9100),
                                     log => "$d/upstream.log")->start;
my %key = %{ $up->credentials };

# ------------------------------------------------------- the files

for my $kid (qw(bundle auth approver)) {
    ($rc, $out, $err) = run_foxgov('keygen', '--kid', $kid, '--alg', 'EdDSA',
                                   '--out', "$d/keys");
    is($rc, 0, "keygen $kid") or diag($err);
}
spew("$etc/auth-keys.jwks.json", slurp("$d/keys/auth.jwks.json"));
spew("$etc/approver-keys.jwks.json", slurp("$d/keys/approver.jwks.json"));
spew("$etc/bundle-keys.jwks.json", slurp("$d/keys/bundle.jwks.json"));
($rc, $out, $err) = run_foxgov('bundle', 'build',
    "$top/conf/bundles/itsm-triage", '-o', "$etc/bundle.tar.gz",
    '--key', "$d/keys/bundle.pem");
is($rc, 0, 'bundle build itsm-triage, signed') or diag($err);

my $conf = slurp("$top/conf/sidecar/nginx.conf");
my $directives = directives($conf);
my @listen = $directives =~ /^\s*listen\s+(\S+?);/mg;
is(scalar(grep { !/^127\.0\.0\.1:\d+$/ } @listen), 0,
   'the sidecar listens on 127.0.0.1 only: ' . join ' ', @listen);
like($directives, qr/^worker_processes [1-4];/m, 'few workers');
like($directives, qr/^\s*foxgov_redis\s+127\.0\.0\.1:\d+\s/m,
     'its Redis is on loopback, by address');
like($directives, qr{^\s*foxgov_spool\s+/var/lib/foxgov/spool\s}m,
     'the spool on local disk');
my @creds = $directives =~ /foxgov_credential\s+[^;]*?file=(\S+)[^;]*;/g;
my @bound = $directives =~ /foxgov_credential\s+[^;]*tenant=acme[^;]*;/g;
is(scalar @bound, scalar @creds, 'every credential is bound to the app\'s tenant');
my ($cfg_redis) = $directives =~ /foxgov_redis\s+(\S+)/;
my ($ld_redis) = slurp("$top/conf/foxgov-ledgerd.conf") =~ /^redis\s+(\S+)$/m;
is($ld_redis, $cfg_redis, 'conf/foxgov-ledgerd.conf reads that Redis');
like($conf, qr/^# .*app.*->.*gateway/mi, 'the header says how the pieces fit');

# the secrets the mock expects, one a credential file
my %cred_for = ('openai.key' => $key{openai},
                'servicenow.token' => $key{servicenow},
                'slack-bot.token' => $key{slack});
for my $f (@creds) {
    (my $name = $f) =~ s{.*/}{};
    ok(exists $cred_for{$name}, "a secret for $name");
    spew("$etc/credentials/$name", ($cred_for{$name} // 'x') . "\n");
    chmod 0600, "$etc/credentials/$name";
}

if ($> == 0) {
    my ($wuser) = $conf =~ /^user (\S+);/m;
    chown scalar(getpwnam($wuser)), -1, "$d/spool";
}
chmod 0700, "$d/spool";

my $moved = move_conf($conf,
    paths      => { '/etc/foxgov'           => $etc,
                    '/var/log/foxgov'       => "$d/logs",
                    '/var/lib/foxgov/spool' => "$d/spool" },
    module     => $module,
    harness    => $t,
    redis      => $redis->addr,
    schemas    => "$top/conf",
    listen     => [ $t->port(8080), $t->port(8081) ],
    # the providers are the mock, in plain HTTP
    upstreams  => sub { $up->port },
    plain_http => 1);
my @left = (paths_left($moved, $top, $d, $module),
            directives($moved) =~ m{(https://\S+)}g);
is_deeply(\@left, [], 'no system path or TLS upstream left');
$t->write_file('nginx.conf', $moved);

($rc, $out) = $t->test_config();
is($rc, 0, 'nginx -t accepts conf/sidecar/nginx.conf') or diag($out);
unlike($out, qr/\[(?:emerg|alert|crit|error|warn)\]/, '... without a warning')
    or diag($out);

# ------------------------------------------------------- calls

$t->run();

sub mint {
    my (%o) = @_;
    my ($rc, $tok, $e) = run_foxgov('token', 'mint', '--key',
        "$d/keys/auth.pem", '--tenant', $o{tenant} // 'acme',
        '--sub', 'triage-agent', '--ttl', '15m', '--workspace', 'itsm',
        '--environment', $o{env} // 'prod',
        map { ('--cap', $_) } 'model:gpt-4o*', 'tool:servicenow.incident:*',
        'tool:slack.chat:write');
    die "token mint: $e" if $rc;
    chomp $tok;
    return $tok;
}

sub call {
    my ($method, $uri, $tok, $body) = @_;
    my $raw = "$method $uri HTTP/1.0\r\nHost: localhost\r\n"
        . "Authorization: Bearer $tok\r\n";
    $raw .= "Content-Type: application/json\r\nContent-Length: "
        . length($body) . "\r\n" if defined $body;
    my $r = $t->http($raw . "\r\n" . ($body // ''));
    my $j = eval { $JSON->decode(http_body($r) // '') };
    return { raw => $r, status => http_status($r), json => $j,
             exec => http_header($r, 'FoxGov-Execution-Id'),
             hash => http_header($r, 'FoxGov-Decision-Hash') };
}

my %calls;      # execution id -> its call record's type
sub in_redis_now {
    my ($hash) = @_;
    return scalar grep { $_->{h} eq ($hash // '') } $redis->entries('acme');
}

my $tok = mint();

my $r = call(POST => '/v1/chat/completions', $tok,
    '{"model":"gpt-4o-2024-08-06","messages":[{"role":"user","content":"classify INC0010001"}]}');
is($r->{status}, 200, 'model call through the sidecar: 200') or diag($r->{raw});
like($r->{json}{choices}[0]{message}{content} // '', qr/^Summary: classify/,
     '... the provider\'s answer');
is(in_redis_now($r->{hash}), 1,
   '... its decision was in Redis before the answer (strict)');
$calls{ $r->{exec} } = 'ModelCallRecord';
my $seen = $up->last_request;
is($seen->{headers}{authorization}, "Bearer $key{openai}",
   '... the provider got its key from the gateway');
unlike(join(' ', values %{ $seen->{headers} }), qr/\Q$tok\E/,
       '... and not the app\'s token');

# ServiceNow reads: one here (the bundle allows 10 a minute a tenant)
$r = call(GET => '/servicenow/api/now/table/incident?sysparm_limit=1', $tok);
is($r->{status}, 200, 'tool call, ServiceNow read: 200') or diag($r->{raw});
is(scalar @{ $r->{json}{result} // [] }, 1, '... one incident');
is(in_redis_now($r->{hash}), 1, '... its decision in Redis before the answer');
$calls{ $r->{exec} } = 'ToolCallRecord';
is($up->last_request->{headers}{authorization}, "Bearer $key{servicenow}",
   '... with the ServiceNow token');

my $sys_id = '9d385017c611228701d22104cc95c371';
my $write = '{"priority":"2","category":"network","work_notes":"triaged"}';
$r = call(PATCH => "/servicenow/api/now/table/incident/$sys_id", $tok, $write);
is($r->{status}, 428, 'ServiceNow write in prod: held for an approver');
$calls{ $r->{exec} } = 'ToolCallRecord';

$r = call(PATCH => "/servicenow/api/now/table/incident/$sys_id",
          mint(env => 'staging'), $write);
is($r->{status}, 200, 'ServiceNow write from staging: 200') or diag($r->{raw});
is($up->incidents->{$sys_id}{priority}, '2', '... the incident is changed');
$calls{ $r->{exec} } = 'ToolCallRecord';

$r = call(POST => '/slack/api/chat.postMessage', $tok,
          '{"channel":"C0123456789","text":"INC0010001 triaged"}');
is($r->{status}, 200, 'Slack post: 200') or diag($r->{raw});
is($r->{json}{ok}, JSON::PP::true, '... ok');
$calls{ $r->{exec} } = 'ToolCallRecord';

my $requests = scalar $up->requests;
$r = call(POST => '/v1/chat/completions', mint(tenant => 'globex'),
    '{"model":"gpt-4o-2024-08-06","messages":[{"role":"user","content":"hi"}]}');
is($r->{status}, 403, 'another tenant\'s token: 403');
is($r->{json}{error}{code}, 'credential_unavailable',
   '... credential_unavailable: the app\'s keys are for its tenant only');
is(scalar $up->requests, $requests, '... and nothing reached the provider');

# strict: without Redis the app's calls stop rather than go unrecorded
$redis->stop;
$r = call(POST => '/slack/api/chat.postMessage', $tok,
          '{"channel":"C0123456789","text":"no evidence, no post"}');
is($r->{status}, 503, 'Redis stopped: the call is refused');
is($r->{json}{error}{code}, 'evidence_unavailable', '... evidence_unavailable');
is(scalar $up->requests, $requests, '... and not forwarded');
$calls{ $r->{exec} } = 'ToolCallRecord';
ok(start_redis(), 'Redis started again (its AOF kept the streams)');


# every record, then the ledger
my $deadline = time() + 20;
my ($by, @missing);
while (1) {
    $by = $redis->by_execution('acme');
    @missing = grep { my $x = $by->{$_} // {};
        !($x->{AuthContext} && $x->{PolicyDecisionRecord} && $x->{ $calls{$_} })
    } sort keys %calls;
    last if !@missing || time() > $deadline;
    sleep 0.1;
}
is(scalar @missing, 0, 'every call\'s records are in foxgov:ev:{acme}, '
   . 'the refused one\'s from the spool')
    or diag("@missing");

my $m = $t->http_get('/metrics', port => $t->port(8081));
is(http_status($m), 200, 'the metrics answer on loopback');
like(http_body($m), qr/^foxgov_redis_connected_workers [12]$/m,
     '... the workers are connected to Redis again');
ok((http_body($m) =~ /^foxgov_evidence_records_total\{result="drained"\} (\d+)$/m)[0] >= 3,
   '... and the spooled records drained');

is($t->stop(), 0, 'nginx stops on QUIT');
my @bad = grep { /\[(?:alert|emerg|crit)\]/ }
          split /\n/, slurp("$d/logs/gateway-error.log")
                      . $t->read_file('error.log');
ok(!@bad, 'no [alert], [emerg] or [crit]') or diag(join "\n", @bad);

my $ld = FoxGov::Test::Ledgerd->new(redis => $redis,
    ledger => "file:$d/ledger", log => "$d/ledgerd.log",
    args => [ '--redis-password-file', "$etc/redis.password",
              '--orphan-grace', '0ms' ]);
is($ld->run_once, 0, 'foxgov-ledgerd --once, as the default user of the ACL')
    or diag($ld->log_text);
($rc, $out, $err) = run_foxgov('verify', "$d/ledger/acme/ledger.jsonl");
is($rc, 0, 'foxgov verify accepts the ledger') or diag($err);
my @lines = split /\n/, slurp("$d/ledger/acme/ledger.jsonl");
is(scalar @lines, 3 * keys %calls, 'three records a call, each once');
is($redis->client->exists('foxgov:dlq'), 0, 'nothing dead-lettered');

# ------------------------------------------- what it refuses to start with

sub line_of {
    my ($text, $re) = @_;
    my @l = split /\n/, $text;
    for my $i (0 .. $#l) { return $i + 1 if $l[$i] =~ $re }
    return undef;
}

# a credential file missing: nginx -t names the file and the line
unlink "$etc/credentials/slack-bot.token";
($rc, $out) = $t->test_config();
isnt($rc, 0, 'a credential file missing: nginx -t fails');
my $cl = line_of($moved, qr/^\s*foxgov_credential slack-bot/);
like($out, qr/\[emerg\] .*slack-bot\.token.* in \Q$d\E\/nginx\.conf:(\d+)/,
     '... naming the file and the configuration line') or diag($out);
my ($said) = $out =~ /slack-bot\.token.* in \Q$d\E\/nginx\.conf:(\d+)/;
ok(defined $said && $said >= $cl && $said <= $cl + 2,
   "... the foxgov_credential's line ($cl)") or diag($out);
unlike($out, qr/\Q$key{slack}\E/, '... and no secret');
spew("$etc/credentials/slack-bot.token", "$key{slack}\n");

# Redis by a host name
(my $named = $moved) =~ s{(foxgov_redis\s+)\S+}{${1}redis.local:6379};
$t->write_file('nginx.conf', $named);
($rc, $out) = $t->test_config();
isnt($rc, 0, 'Redis by a host name: nginx -t fails');
my $rl = line_of($named, qr/^\s*foxgov_redis /);
like($out, qr/\[emerg\] invalid address "redis\.local:6379" in "foxgov_redis".* in \Q$d\E\/nginx\.conf:(\d+)/,
     '... saying why') or diag($out);
($said) = $out =~ /foxgov_redis.* in \Q$d\E\/nginx\.conf:(\d+)/;
ok(defined $said && $said >= $rl && $said <= $rl + 2,
   "... at the foxgov_redis line ($rl)") or diag($out);

$t->write_file('nginx.conf', $moved);
($rc, $out) = $t->test_config();
is($rc, 0, 'put back: nginx -t passes again') or diag($out);

$up->stop;
$redis->stop;
done_testing();
