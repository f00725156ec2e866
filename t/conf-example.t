#!/usr/bin/perl

# conf/nginx.conf, the single gateway example, is a configuration nginx
# accepts with the module loaded: its /etc/foxgov/... files are made here
# (real keys, the itsm-triage bundle built and signed with them, dummy
# credentials, Redis's password), its listen ports and upstream servers
# moved to free loopback ports, its Redis to a real one started here with
# that password, its logs, spool and pid into the test's directory.  Then
# "nginx -t" passes, which means both tool schemas in conf/schemas compile
# (a schema that does not is shown to fail it), and nginx started with it
# answers the way the itsm-triage policy says.  The evidence: every
# recorded call's records reach the stream foxgov:ev:{acme}; the metrics
# location answers on its own port; with Redis stopped, a write (strict
# there) is refused with 503 while a read (async) is forwarded and
# spooled, and the spool drains once Redis is back; foxgov-ledgerd --once
# makes of the stream a ledger that foxgov verify accepts, every call's
# records in it once.  The example and conf/foxgov-ledgerd.conf name the
# same Redis and password file.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Copy qw(copy);
use File::Path qw(make_path);
use IPC::Open3;
use JSON::PP;
use Symbol qw(gensym);
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::ConfExample qw(move_conf paths_left directives);
use FoxGov::Test::Nginx qw(repo_root module_path nginx_binary
    http_status http_header http_body);
use FoxGov::Test::Ledgerd;
use FoxGov::Test::Redis;

my $top = repo_root();
my $module = module_path();
my $foxgov = $ENV{FOXGOV_CLI} // "$top/build/bin/foxgov";

plan skip_all => "$module is missing: run make" unless -f $module;
plan skip_all => "$foxgov is missing: run make" unless -x $foxgov;
plan skip_all => nginx_binary() . ' is missing or not executable'
    unless -x nginx_binary();
plan skip_all => 'foxgov-ledgerd not built'
    unless -x FoxGov::Test::Ledgerd::bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};

my $json = JSON::PP->new->canonical;

sub run {
    my (@args) = @_;
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, $foxgov, @args);
    close $in;
    local $/;
    my $o = <$out> // '';
    my $e = <$err> // '';
    waitpid $pid, 0;
    return ($? >> 8, $o, $e);
}

sub slurp { open my $f, '<:raw', $_[0] or die "$_[0]: $!"; local $/; <$f> }
sub spew { open my $f, '>:raw', $_[0] or die "$_[0]: $!"; print $f $_[1]; close $f }

my $t = FoxGov::Test::Nginx->new();
my $d = $t->testdir();
my $etc = "$d/foxgov-etc";
make_path("$etc/credentials", "$d/keys", "$d/logs", "$d/spool");

# the Redis the example sends its evidence to, with a password
my $password = join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 32;
my $redis = FoxGov::Test::Redis->new(password => $password);
$redis->start;

# ------------------------------------------------------------- the files

my ($rc, $out, $err);

for my $kid (qw(bundle auth approver)) {
    ($rc, $out, $err) = run('keygen', '--kid', $kid, '--alg', 'EdDSA',
                            '--out', "$d/keys");
    is($rc, 0, "keygen $kid") or diag($err);
}

copy("$d/keys/auth.jwks.json", "$etc/auth-keys.jwks.json") or die $!;
copy("$d/keys/approver.jwks.json", "$etc/approver-keys.jwks.json") or die $!;
copy("$d/keys/bundle.jwks.json", "$etc/bundle-keys.jwks.json") or die $!;
spew("$etc/redis.password", "$password\n");
chmod 0640, "$etc/redis.password";

my $bundle_src = "$top/conf/bundles/itsm-triage";
ok(-f "$bundle_src/.manifest", 'the itsm-triage bundle has a .manifest');
($rc, $out, $err) = run('bundle', 'build', $bundle_src, '-o',
                        "$etc/bundle.tar.gz", '--key', "$d/keys/bundle.pem");
is($rc, 0, 'bundle build itsm-triage, signed') or diag($err);

# ------------------------------------------------ conf/nginx.conf, moved

my $conf = slurp("$top/conf/nginx.conf");

my %need = (
    'load_module'                  => qr/^load_module \S+;/m,
    'foxgov_policy_bundle keys='   => qr/foxgov_policy_bundle\s+\S+\s+keys=/,
    'foxgov_auth_keys'             => qr/^\s*foxgov_auth_keys\s/m,
    'foxgov_approval_keys'         => qr/^\s*foxgov_approval_keys\s/m,
    'foxgov_zone'                  => qr/^\s*foxgov_zone\s/m,
    'foxgov_call model openai'     => qr/foxgov_call\s+model\s+openai;/,
    'foxgov_call model anthropic'  => qr/foxgov_call\s+model\s+anthropic;/,
    'servicenow read'              => qr/tool servicenow\.incident action=read/,
    'servicenow write'             => qr/tool servicenow\.incident action=write/,
    'slack'                        => qr/tool slack\.chat action=write/,
    '$foxgov_route in a map'       => qr/map \$foxgov_route /,
    'log_format with $foxgov_*'    => qr/log_format[^;]*\$foxgov_execution_id/,
    'foxgov_redis at an IP address' =>
        qr/^\s*foxgov_redis\s+\d+\.\d+\.\d+\.\d+:\d+\s/m,
    'foxgov_spool /var/lib/foxgov/spool' =>
        qr{^\s*foxgov_spool\s+/var/lib/foxgov/spool[\s;]}m,
    'foxgov_evidence async in http{}' => qr/^    foxgov_evidence\s+async;/m,
    'foxgov_evidence strict in a location' =>
        qr/^            foxgov_evidence\s+strict;/m,
    'foxgov_metrics, loopback only' =>
        qr/allow 127\.0\.0\.1;\s+allow ::1;(?:\s*#[^\n]*)?\s+deny all;\s+foxgov_metrics;/,
    'logs under /var/log/foxgov'   =>
        qr{^error_log /var/log/foxgov/gateway-error\.log }m,
    'the worker user'              => qr/^user www-data;/m,
);
like($conf, $need{$_}, "conf/nginx.conf has $_") for sort keys %need;
my $directives = directives($conf);
ok($directives !~ m{/var/log/nginx/}, 'no log under /var/log/nginx');
unlike($conf, qr/Until the Redis evidence transport/, 'no stale comment');

my @schemas = $conf =~ /schema=(\S+?);/g;
is(scalar @schemas, 2, 'two tool schemas');
ok(-f "$top/conf/$_", "conf/$_ exists") for @schemas;

# The example and foxgov-ledgerd's example read the same Redis with the
# same password file.
my $ldconf = slurp("$top/conf/foxgov-ledgerd.conf");
my ($gw_redis, $gw_pw) = $conf =~ /^\s*foxgov_redis\s+(\S+)\s+password_file=(\S+)/m;
my ($ld_redis) = $ldconf =~ /^redis\s+(\S+)$/m;
my ($ld_pw) = $ldconf =~ /^redis-password-file\s+(\S+)$/m;
is($ld_redis, $gw_redis, 'foxgov-ledgerd.conf reads the Redis nginx.conf writes');
is($ld_pw, $gw_pw, '... with the same password file');

# the workers' user, which owns the spool (as root only: otherwise there
# are no other users to be)
my ($wuser) = $conf =~ /^user (\S+);/m;
if ($> == 0) {
    my $uid = getpwnam($wuser);
    ok(defined $uid, "the worker user $wuser exists");
    chown $uid, -1, "$d/spool";
}
chmod 0700, "$d/spool";

# Move the example into this directory.  $schema_dir stands for the
# directory relative schema= paths are read from.
sub moved {
    my ($text, $schema_dir) = @_;
    return move_conf($text,
        paths     => { '/etc/foxgov'           => $etc,
                       '/var/log/foxgov'       => "$d/logs",
                       '/var/lib/foxgov/spool' => "$d/spool" },
        module    => $module,
        harness   => $t,
        redis     => $redis->addr,
        schemas   => $schema_dir,
        listen    => [ $t->port(8080), $t->port(8081) ],
        upstreams => sub { $t->port(9000 + $_[0]) });
}

my $moved = moved($conf, "$top/conf");

is_deeply([ paths_left($moved, $top, $d, $module) ], [],
          'no system path left');
unlike($moved, qr{\bserver\s+[a-z][a-z0-9.-]*\.[a-z]+:\d+;},
       'no upstream name left');
my @listen = $moved =~ /^\s*listen\s+127\.0\.0\.1:(\d+)/mg;
is(scalar @listen, 2, 'two servers: the gateway and its metrics');
my $metrics_port = $t->port(8081);
is($listen[1], $metrics_port, '... the metrics on a port of their own');

my %creds = map { $_ => 1 } $moved =~ m{file=\Q$etc\E/credentials/([^\s;]+)}g;
ok(scalar(keys %creds) >= 4, 'credential files: ' . join(' ', sort keys %creds));
for my $c (sort keys %creds) {
    spew("$etc/credentials/$c", "dummy-secret-for-$c\n");
    chmod 0600, "$etc/credentials/$c";
}

$t->write_file('nginx.conf', $moved);

# ------------------------------------------------------------- nginx -t

($rc, $out) = $t->test_config();
is($rc, 0, 'nginx -t accepts conf/nginx.conf') or diag($out);
like($out, qr/test is successful/, 'nginx -t: test is successful');
unlike($out, qr/\[(?:emerg|alert|crit|error|warn)\]/,
       'nginx -t: no warning (the bundle loads, the keys and files are there)')
    or diag($out);

# A schema that does not compile fails nginx -t, naming it: so the pass
# above means both schemas compiled.

my $bad = "$d/bad-schemas";
make_path($bad);
copy("$top/conf/$_", "$bad/" . ($_ =~ s{.*/}{}r)) or die $! for @schemas;
(my $first = $schemas[0]) =~ s{.*/}{};
my $doc = $json->decode(slurp("$bad/$first"));
$doc->{properties}{work_notes}{format} = 'markdown';
$doc->{properties}{category}{format} = 'markdown'
    unless $doc->{properties}{work_notes};
spew("$bad/$first", $json->encode($doc));

(my $bad_conf = moved($conf, $bad)) =~ s{schema=\Q$bad\E/(?:[^/\s;]+/)*}
                                        {schema=$bad/}g;
$t->write_file('nginx.conf', $bad_conf);
($rc, $out) = $t->test_config();
isnt($rc, 0, "nginx -t fails with a broken $first");
like($out, qr/\[emerg\] input schema "\Q$bad\E\/\Q$first\E" does not compile: .*unsupported keyword/,
     'naming the schema and the keyword') or diag($out);

$t->write_file('nginx.conf', $moved);
unlink "$d/error.log";      # the [emerg] above was meant

# ------------------------------------------------ nginx runs with it

$t->run();

my $r = $t->http_get('/healthz');
is(http_status($r), 200, '/healthz');

sub mint {
    my (@caps) = @_;
    my ($rc, $tok, $e) = run('token', 'mint', '--key', "$d/keys/auth.pem",
        '--tenant', 'acme', '--sub', 'svc-triage', '--ttl', '15m',
        '--workspace', 'itsm', '--environment', 'prod',
        map { ('--cap', $_) } @caps);
    die "token mint: $e" if $rc;
    chomp $tok;
    return $tok;
}

sub post {
    my ($uri, $token, $body) = @_;
    my $raw = "POST $uri HTTP/1.0\r\nHost: localhost\r\n"
        . ($token ? "Authorization: Bearer $token\r\n" : '')
        . "Content-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n" . $body;
    return $t->http($raw);
}

sub code_of {
    my ($resp) = @_;
    my $b = eval { $json->decode(http_body($resp) // '') };
    return $b ? $b->{error}{code} : undef;
}

# the recorded calls: execution id -> its call record's type
my %calls;
sub recorded {
    my ($resp, $type) = @_;
    my $x = http_header($resp, 'FoxGov-Execution-Id');
    $calls{$x} = $type if $x;
    return $resp;
}

my $chat = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}';

$r = post('/v1/chat/completions', undef, $chat);
is(http_status($r), 401, 'OpenAI without a token: 401');
is(code_of($r), 'missing_token', '... missing_token');
ok(http_header($r, 'FoxGov-Execution-Id'), '... with FoxGov-Execution-Id');

$r = $t->http_get('/v1/models');
is(http_status($r), 400, '/v1/models is not an endpoint: 400');
is(code_of($r), 'unknown_endpoint', '... unknown_endpoint');

my $tok = mint('model:gpt-4o*', 'model:claude-*', 'tool:slack.chat:write',
               'tool:servicenow.incident:*');

$r = recorded(post('/v1/chat/completions', $tok, $chat), 'ModelCallRecord');
is(http_status($r), 403, 'the floating alias gpt-4o is refused: 403');
is(code_of($r), 'policy_denied', '... policy_denied (deny-unpinned-models)');
like(http_header($r, 'FoxGov-Decision-Hash') // '', qr/^[0-9a-f]{64}$/,
     '... with FoxGov-Decision-Hash: the bundle loaded in the worker');

$r = recorded(post('/anthropic/v1/messages', $tok,
          '{"model":"claude-3-opus-20240229","max_tokens":64,'
          . '"messages":[{"role":"user","content":"hi"}]}'), 'ModelCallRecord');
is(code_of($r), 'policy_denied',
   'Anthropic /anthropic/v1/messages reaches the adapter as /v1/messages');

$r = recorded(post('/slack/api/chat.postMessage', $tok,
          '{"channel":"C0123456789","text":"triage done","as_user":true}'),
          'ToolCallRecord');
is(http_status($r), 400, 'Slack: a field outside the schema: 400');
is(code_of($r), 'schema_violation', '... schema_violation');

my $slack_ok = '{"channel":"C0123456789","text":"triage done"}';
$r = recorded(post('/slack/api/chat.postMessage', $tok, $slack_ok),
              'ToolCallRecord');
is(http_status($r), 502,
   'Slack (strict, Redis up): allowed, forwarded (to a closed port here): 502');

$r = $t->http_get('/slack/api/chat.postMessage');
is(http_status($r), 405, 'Slack: GET is not a call: 405');

my $sys_id = '0123456789abcdef0123456789abcdef';
my $patch = sub {
    my ($body) = @_;
    return recorded($t->http("PATCH /servicenow/api/now/table/incident/$sys_id "
        . "HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer $tok\r\n"
        . "Content-Type: application/json\r\nContent-Length: "
        . length($body) . "\r\n\r\n$body"), 'ToolCallRecord');
};

$r = $patch->('{"state":"7","work_notes":"closing"}');
is(code_of($r), 'schema_violation', 'ServiceNow write: state 7 is refused');

$r = $patch->('{"priority":"2","category":"network","work_notes":"VPN"}');
is(http_status($r), 428, 'ServiceNow write in prod: held for approval');
is(code_of($r), 'approval_required', '... approval_required');
my $apr = eval { $json->decode(http_body($r))->{error}{approval} } // {};
is($apr->{tool}, 'servicenow.incident', '... the approval request names the tool');

# (ServiceNow reads: two in all, inside the bundle's 10 a minute)
my $read = sub {
    return recorded($t->http("GET /servicenow/api/now/table/incident?sysparm_limit=1 "
        . "HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer $tok\r\n\r\n"),
        'ToolCallRecord');
};
$r = $read->();
is(http_status($r), 502,
   'ServiceNow read: allowed, forwarded (to a closed port here): 502');
like(http_header($r, 'FoxGov-Decision-Hash') // '', qr/^[0-9a-f]{64}$/,
     '... with its decision hash');

$r = $t->http("DELETE /servicenow/api/now/table/incident/$sys_id HTTP/1.0\r\n"
              . "Host: localhost\r\n\r\n");
is(http_status($r), 405, 'ServiceNow DELETE is not a call: 405');

# ------------------------------------------------ the records in Redis

sub wait_stream {
    my ($timeout) = @_;
    my $deadline = time() + $timeout;
    my ($by, @missing);
    while (1) {
        $by = $redis->by_execution('acme');
        @missing = grep {
            my $x = $by->{$_} // {};
            !($x->{AuthContext} && $x->{PolicyDecisionRecord}
              && $x->{ $calls{$_} })
        } sort keys %calls;
        last if !@missing || time() > $deadline;
        sleep 0.1;
    }
    return ($by, @missing);
}

my ($by, @missing) = wait_stream(10);
is(scalar keys %calls, 7, 'seven recorded calls');
is(scalar @missing, 0, 'each one\'s AuthContext, PolicyDecisionRecord and '
   . 'call record are in foxgov:ev:{acme}') or diag("missing: @missing");
my @entries = $redis->entries('acme');
ok((grep { $_->{h} =~ /^[0-9a-f]{64}$/ && length $_->{r} } @entries)
   == @entries, '... each entry with its envelope_hash and record');

# ------------------------------------------------ the metrics

sub metrics {
    my $resp = $t->http_get('/metrics', port => $metrics_port);
    my %m;
    for (split /\n/, http_body($resp) // '') {
        $m{$1} = $2 if /^(\w+(?:\{[^}]*\})?) (\S+)$/;
    }
    return ($resp, \%m);
}

my ($mr, $m) = metrics();
is(http_status($mr), 200, 'GET /metrics on the metrics port: 200');
like(http_header($mr, 'Content-Type') // '', qr{^text/plain; version=0\.0\.4},
     '... the Prometheus text format');
is($m->{'foxgov_calls_total{kind="tool",decision="ALLOW"}'}, 2,
   '... two tool calls allowed (the Slack post and the read)');
ok(($m->{'foxgov_evidence_records_total{result="sent"}'} // 0) >= 21,
   '... the records sent to Redis');
ok(($m->{foxgov_redis_connected_workers} // 0) >= 1,
   '... workers connected to Redis');
like(join("\n", keys %$m), qr/^foxgov_bundle_info\{revision="itsm-triage-/m,
     '... the bundle revision');
is(http_status($t->http_get('/v1/chat/completions', port => $metrics_port)),
   404, 'the metrics port serves nothing else');
is(http_status($t->http_get('/metrics')), 404,
   'the gateway port does not serve the metrics');

# ------------------------------------------------ Redis away

$redis->stop;

$r = recorded(post('/slack/api/chat.postMessage', $tok, $slack_ok),
              'ToolCallRecord');
is(http_status($r), 503, 'Redis stopped: the Slack post (strict) is refused');
is(code_of($r), 'evidence_unavailable', '... evidence_unavailable');

$r = $read->();
is(http_status($r), 502,
   'Redis stopped: the ServiceNow read (async) is forwarded all the same');

my @spool = glob "$d/spool/spool-*.fgs";
ok(@spool, 'the spool has a file: ' . join ' ', map { s{.*/}{}r } @spool);
my $spooled = 0;
for (1 .. 50) {
    $spooled = 0;
    $spooled += -s $_ for glob "$d/spool/spool-*.fgs";
    last if $spooled > 8;
    sleep 0.1;
}
ok($spooled > 8, "... holding the records ($spooled bytes)");
if ($> == 0) {
    my @st = stat $spool[0];
    is($st[4], scalar getpwnam($wuser), "... owned by $wuser");
    is($st[2] & 07777, 0600, '... mode 0600');
}

$redis->start;                  # same port, same data (appendonly)

($by, @missing) = wait_stream(20);
is(scalar @missing, 0, 'Redis back: the spooled records reach the stream')
    or diag("missing: @missing");
($mr, $m) = metrics();
is($m->{foxgov_evidence_strict_refused_total}, 1,
   'metrics: one call refused for its evidence');
ok(($m->{'foxgov_evidence_records_total{result="drained"}'} // 0) >= 6,
   'metrics: the spooled records drained');

is($t->stop(), 0, 'nginx stops on QUIT');

my @bad = grep { /\[(?:alert|emerg|crit)\]/ }
          split /\n/, slurp("$d/logs/gateway-error.log")
                      . $t->read_file('error.log');
ok(!@bad, 'no [alert], [emerg] or [crit]') or diag(join "\n", @bad);

my $access = slurp("$d/logs/gateway-access.log");
like($access,
     qr/tenant=acme decision=REQUIRE_HITL route=- decision_hash=[0-9a-f]{64}/,
     'the access log has the $foxgov_* variables');
like($access,
     qr{"GET /servicenow/api/now/table/incident\?sysparm_limit=1 [^"]*" 502 .* decision=ALLOW },
     '... the read was decided ALLOW');

# ------------------------------------------------ into the ledger

my $ld = FoxGov::Test::Ledgerd->new(redis => $redis,
    ledger => "file:$d/ledger", log => "$d/ledgerd.log",
    args => [ '--redis-password-file', "$etc/redis.password",
              '--orphan-grace', '0ms' ]);
is($ld->run_once, 0, 'foxgov-ledgerd --once drains the stream')
    or diag($ld->log_text);

my $ledger = "$d/ledger/acme/ledger.jsonl";
($rc, $out, $err) = run('verify', $ledger);
is($rc, 0, 'foxgov verify accepts the ledger') or diag($err);

my %got;
for my $l (split /\n/, slurp($ledger)) {
    my $rec = $json->decode($l)->{record};
    push @{ $got{ $rec->{execution_id} } }, $rec->{record_type};
}
my @wrong = grep {
    join(' ', sort @{ $got{$_} // [] })
        ne join(' ', sort 'AuthContext', 'PolicyDecisionRecord', $calls{$_})
} sort keys %calls;
is(scalar @wrong, 0, 'every call\'s three records are in the ledger once')
    or diag(explain({ map { $_ => $got{$_} } @wrong }));
is(scalar(keys %got), scalar(keys %calls), '... and nothing else');
is($redis->client->exists('foxgov:dlq'), 0, 'nothing dead-lettered');

$redis->stop;
done_testing();
