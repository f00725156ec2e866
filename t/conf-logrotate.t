#!/usr/bin/perl

# The layout is logrotate-safe.  A temp root mirrors it: /etc/foxgov (real
# keys, the itsm-triage bundle built and signed, credentials, Redis's
# password), /var/lib/foxgov/{ledger,spool}, /var/log/foxgov; conf/nginx.conf
# runs there with the module, logging into that /var/log/foxgov and sending
# its evidence to a real Redis, and foxgov-ledgerd --once makes a ledger
# with a signed checkpoint in that /var/lib/foxgov/ledger.  Then the real
# logrotate runs conf/logrotate/foxgov (paths mapped) with --force: the
# old log is rotated, nginx reopened its logs (a new request lands in the
# new file), a second rotation compresses the first (delaycompress); the
# ledger, its checkpoint, the spool and the keys are byte for byte what
# they were and foxgov verify still passes.  And no logrotate file of
# this machine (Debian's /etc/logrotate.d, ours) has a glob that matches a
# ledger, checkpoint, spool or key path, while exactly one (ours) matches
# each gateway log.  The gateway's systemd unit, nginx.conf and the
# logrotate file name the same pid file.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use File::Find qw(find);
use File::Path qw(make_path);
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::ConfExample qw(move_conf map_paths paths_left);
use FoxGov::Test::Nginx qw(repo_root module_path nginx_binary
    http_status http_header);
use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov);
use FoxGov::Test::Ledgerd;
use FoxGov::Test::Redis;

my $top = repo_root();
my $module = module_path();
my ($logrotate) = grep { -x } map { "$_/logrotate" }
    split(/:/, $ENV{PATH}), '/usr/sbin', '/sbin';

plan skip_all => "$module is missing: run make" unless -f $module;
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => nginx_binary() . ' is missing or not executable'
    unless -x nginx_binary();
plan skip_all => 'foxgov-ledgerd not built'
    unless -x FoxGov::Test::Ledgerd::bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};
plan skip_all => 'no logrotate (apt-get install logrotate)' unless $logrotate;
plan skip_all => 'logrotate and USR1 to a root nginx need root' unless $> == 0;

my $JSON = JSON::PP->new->utf8->canonical;

sub slurp { open my $f, '<:raw', $_[0] or die "$_[0]: $!"; local $/; <$f> }
sub spew { open my $f, '>:raw', $_[0] or die "$_[0]: $!"; print $f $_[1]; close $f }

my $t = FoxGov::Test::Nginx->new();
my $d = $t->testdir();
my $R = "$d/root";                          # stands for /
my ($etc, $lib, $log) = ("$R/etc/foxgov", "$R/var/lib/foxgov",
                         "$R/var/log/foxgov");
make_path("$etc/credentials", "$etc/keys", "$lib/spool", $log);
chmod 0755, $R, "$R/etc", "$R/var", "$R/var/lib", "$R/var/log", $etc,
            $lib, $log;
chmod 0700, "$etc/credentials";

my ($rc, $out, $err);

# ---------------------------------------------------------- /etc/foxgov

for my $kid (qw(bundle auth approver)) {
    ($rc, $out, $err) = run_foxgov('keygen', '--kid', $kid, '--alg', 'EdDSA',
                                   '--out', "$d");
    is($rc, 0, "keygen $kid") or diag($err);
}
($rc, $out, $err) = run_foxgov('keygen', '--kid', 'checkpoint', '--out',
                               "$etc/keys");
is($rc, 0, 'keygen checkpoint, in /etc/foxgov/keys') or diag($err);
spew("$etc/auth-keys.jwks.json", slurp("$d/auth.jwks.json"));
spew("$etc/approver-keys.jwks.json", slurp("$d/approver.jwks.json"));
spew("$etc/bundle-keys.jwks.json", slurp("$d/bundle.jwks.json"));
($rc, $out, $err) = run_foxgov('bundle', 'build',
    "$top/conf/bundles/itsm-triage", '-o', "$etc/bundle.tar.gz",
    '--key', "$d/bundle.pem");
is($rc, 0, 'bundle build itsm-triage, signed') or diag($err);
my $password = join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 32;
spew("$etc/redis.password", "$password\n");
chmod 0640, "$etc/redis.password";

my $redis = FoxGov::Test::Redis->new(password => $password);
$redis->start;

# ------------------------------------------- conf/nginx.conf in the root

my $conf = slurp("$top/conf/nginx.conf");
my ($pidfile) = $conf =~ /^pid (\S+);/m;
my ($wuser) = $conf =~ /^user (\S+);/m;
my $wuid = getpwnam($wuser);
ok(defined $wuid, "the workers' user $wuser");
chown $wuid, -1, "$lib/spool";
chmod 0700, "$lib/spool";

my $text = move_conf($conf,
    paths     => { '/etc/foxgov'     => $etc,
                   '/var/lib/foxgov' => $lib,
                   '/var/log/foxgov' => $log },
    module    => $module,
    harness   => $t,
    redis     => $redis->addr,
    schemas   => "$top/conf",
    listen    => [ $t->port(8080), $t->port(8081) ],
    upstreams => sub { $t->port(9000 + $_[0]) });
is_deeply([ paths_left($text, $top, $d, $module) ], [],
          'no system path left in the moved conf/nginx.conf');
for my $c ($text =~ m{file=\Q$etc\E/credentials/([^\s;]+)}g) {
    spew("$etc/credentials/$c", "dummy-secret-for-$c\n");
    chmod 0600, "$etc/credentials/$c";
}
$t->write_file('nginx.conf', $text);
($rc, $out) = $t->test_config();
is($rc, 0, 'nginx -t accepts conf/nginx.conf in the temp root') or diag($out);

$t->run();

my ($tokrc, $tok) = run_foxgov('token', 'mint', '--key', "$d/auth.pem",
    '--tenant', 'acme', '--sub', 'svc-triage', '--ttl', '15m',
    '--environment', 'prod', '--cap', 'model:gpt-4o*',
    '--cap', 'tool:servicenow.incident:*');
chomp $tok;

sub chat {
    my ($content) = @_;
    my $body = $JSON->encode({ model => 'gpt-4o', messages =>
        [ { role => 'user', content => $content } ] });
    return $t->http("POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\n"
        . "Authorization: Bearer $tok\r\nContent-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body");
}

my @execs;
for my $i (1 .. 3) {
    my $r = chat("before rotation $i");
    is(http_status($r), 403, "call $i before rotation: decided (DENY)");
    push @execs, http_header($r, 'FoxGov-Execution-Id');
}
my $r = $t->http("GET /servicenow/api/now/table/incident HTTP/1.0\r\n"
    . "Host: x\r\nAuthorization: Bearer $tok\r\n\r\n");
is(http_status($r), 502, 'a ServiceNow read: forwarded (to a closed port)');

# the access log line is written in the log phase, after the answer
sub wait_for {
    my ($file, $re) = @_;
    my $deadline = time() + 5;
    while (time() < $deadline) {
        return 1 if -f $file && slurp($file) =~ $re;
        sleep 0.05;
    }
    return 0;
}
ok(wait_for("$log/gateway-access.log", qr/GET \/servicenow/),
   'the gateway logs into /var/log/foxgov/gateway-access.log');
my $old_access = slurp("$log/gateway-access.log");

# the ledger, by foxgov-ledgerd --once, with a signed checkpoint
my $deadline = time() + 10;
sleep 0.1 while $redis->client->xlen('foxgov:ev:{acme}') < 12
             && time() < $deadline;
my $ld = FoxGov::Test::Ledgerd->new(redis => $redis,
    ledger => "file:$lib/ledger", log => "$d/ledgerd.log",
    args => [ '--redis-password-file', "$etc/redis.password",
              '--checkpoint-key', "$etc/keys/checkpoint.pem",
              '--orphan-grace', '0ms' ]);
is($ld->run_once, 0, 'foxgov-ledgerd --once makes the ledger')
    or diag($ld->log_text);
my $ledger = "$lib/ledger/acme/ledger.jsonl";
my @verify = ('verify', $ledger, '--checkpoints', "$lib/ledger/acme/checkpoints",
              '--trusted-key', "$etc/keys/checkpoint.jwks.json");
($rc, $out, $err) = run_foxgov(@verify);
is($rc, 0, 'foxgov verify: the ledger and its checkpoint') or diag($err);
like($out, qr/12 records.*1 checkpoint/, '... 12 records, 1 checkpoint');

# every file that must never rotate, by its SHA-256 (and the spool, which
# the workers hold open: its files and sizes)
sub snapshot {
    my %s;
    find({ no_chdir => 1, wanted => sub {
        return unless -f $_;
        $s{ substr($_, length $R) } = sha256_hex(slurp($_));
    } }, $etc, $lib);
    return \%s;
}
my $before = snapshot();

# the modes docs/ledger.md ("Files, permissions and rotation") gives
sub mode { return (stat $_[0])[2] & 07777 }
is(mode("$lib/ledger"), 0700, 'ledger/ 0700');
is(mode("$lib/ledger/acme"), 0700, 'ledger/acme/ 0700');
is(mode($ledger), 0600, 'ledger.jsonl 0600');
is(mode("$lib/ledger/acme/checkpoints"), 0700, 'checkpoints/ 0700');
is(scalar(grep { mode($_) != 0600 } glob "$lib/ledger/acme/checkpoints/*"),
   0, 'each checkpoint 0600');
my @spool = glob "$lib/spool/spool-*.fgs";
is(scalar(grep { mode($_) != 0600 || (stat $_)[4] != $wuid } @spool), 0,
   "the spool files: ${wuser}'s, 0600");
ok(scalar(grep { m{/ledger\.jsonl$} } keys %$before), 'snapshot: the ledger');
ok(scalar(grep { m{/checkpoints/\d+\.checkpoint$} } keys %$before),
   'snapshot: its checkpoint');
ok(scalar(grep { m{/spool/spool-\d+\S*\.fgs$} } keys %$before),
   'snapshot: the spool files');

# ----------------------------------------------------------- logrotate

my $lr = slurp("$top/conf/logrotate/foxgov");
my ($lr_pid) = $lr =~ /cat (\S+?)\)/;
is($lr_pid, $pidfile, 'logrotate signals conf/nginx.conf\'s pid file');
like($lr, qr/^\s*postrotate\s*\n(?:[^\n]*\n)*?\s*kill -USR1 /m,
     'postrotate sends USR1');
like($lr, qr/^\s*daily$/m, 'daily');
like($lr, qr/^\s*compress$/m, 'compress');
like($lr, qr/^\s*delaycompress$/m, 'delaycompress');
(my $lr_directives = $lr) =~ s/#[^\n]*//g;
my @lr_globs = $lr_directives =~ /^(\S[^{\n]*?)\s*\{/mg;
is_deeply(\@lr_globs, [ '/var/log/foxgov/gateway-*.log' ],
          'it rotates the gateway logs, nothing else');

my $gunit = slurp("$top/conf/systemd/foxgov-gateway.service");
like($gunit, qr/^PIDFile=\Q$pidfile\E$/m,
     'the gateway unit\'s PIDFile is the same pid file');
like($gunit, qr/^LogsDirectory=foxgov$/m, '... its LogsDirectory /var/log/foxgov');
SKIP: {
    my ($sa) = grep { -x } map { "$_/systemd-analyze" } split /:/, $ENV{PATH};
    skip 'no systemd-analyze', 1 unless $sa;
    spew("$d/foxgov-gateway.service", $gunit);
    my $said = `$sa verify $d/foxgov-gateway.service 2>&1`;
    ok($? == 0 && $said eq '', 'systemd-analyze verify: the gateway unit')
        or diag($said);
}

my $mapped = map_paths($lr, { '/var/log/foxgov' => $log,
                             $pidfile          => "$d/nginx.pid" });
spew("$d/logrotate.conf", $mapped);

sub logrotate {
    my $o = `$logrotate --force --state $d/logrotate.state $d/logrotate.conf 2>&1`;
    return ($? >> 8, $o);
}

my $pid_before = slurp("$d/nginx.pid");
($rc, $out) = logrotate();
is($rc, 0, 'logrotate --force conf/logrotate/foxgov') or diag($out);
is($out, '', '... says nothing');
is(slurp("$log/gateway-access.log.1"), $old_access,
   'the access log was rotated: gateway-access.log.1, not compressed yet');
ok(-f "$log/gateway-access.log", 'a new gateway-access.log');
my @st = stat "$log/gateway-access.log";
is($st[4], $wuid, "... owned by $wuser");

$r = chat('after rotation');
is(http_status($r), 403, 'a call after rotation');
ok(wait_for("$log/gateway-access.log", qr/POST \/v1\/chat\/completions/),
   'nginx reopened its logs: the call is in the new file');
is(slurp("$log/gateway-access.log.1"), $old_access,
   '... and not in the rotated one');
is(slurp("$d/nginx.pid"), $pid_before, '... the same nginx (reopened, not restarted)');

($rc, $out) = logrotate();
is($rc, 0, 'a second rotation') or diag($out);
ok(-f "$log/gateway-access.log.2.gz", 'the first rotated log is compressed now');
is(`gzip -dc $log/gateway-access.log.2.gz`, $old_access, '... intact');
ok(-f "$log/gateway-access.log.1", 'the last one is not (delaycompress)');

# ------------------------------------------ what must not have changed

is_deeply(snapshot(), $before,
          'ledger, checkpoint, spool and keys: byte for byte the same, '
          . 'nothing added or gone');
($rc, $out, $err) = run_foxgov(@verify);
is($rc, 0, 'foxgov verify still passes') or diag($err);

is($t->stop(), 0, 'nginx stops on QUIT');

# --------------------------- no logrotate glob matches the ledger's files

# fnmatch as logrotate's glob(3) does it: * and ? do not cross a /
sub glob_re {
    my ($g) = @_;
    my $re = '';
    for my $c ($g =~ /(\[[^\]]*\]|.)/g) {
        $re .= $c eq '*' ? '[^/]*' : $c eq '?' ? '[^/]'
             : $c =~ /^\[/ ? ($c =~ s/^\[!/[^/r) : quotemeta $c;
    }
    return qr/^$re$/;
}

# the log paths a logrotate file names (what comes before each "{")
sub globs_of {
    my ($file) = @_;
    (my $s = slurp($file)) =~ s/#[^\n]*//g;
    my @g;
    while ($s =~ /([^{}]*?)\{[^}]*\}/g) {
        push @g, map { s/^"|"$//gr } grep { m{^"?/} } split ' ', $1;
    }
    return @g;
}

my %files = ('/etc/logrotate.conf' => 1);
$files{$_} = 1 for grep { -f } glob '/etc/logrotate.d/*';
my $ours = "$top/conf/logrotate/foxgov";
my @debian = grep { !/\/foxgov$/ } sort keys %files;
ok(scalar(grep { m{/etc/logrotate\.d/} } @debian),
   'Debian\'s logrotate files: ' . join ' ', map { s{.*/}{}r } @debian);

my @never = qw(
    /var/lib/foxgov/ledger/acme/ledger.jsonl
    /var/lib/foxgov/ledger/acme/checkpoints/00000000000000000012.checkpoint
    /var/lib/foxgov/ledger/.lock
    /var/lib/foxgov/spool/spool-4242.fgs
    /var/lib/foxgov/spool/spool-4242-1.fgs
    /etc/foxgov/redis.password
    /etc/foxgov/keys/checkpoint.pem
    /etc/foxgov/credentials/openai.key
);
my @gateway_logs = qw(/var/log/foxgov/gateway-access.log
                      /var/log/foxgov/gateway-error.log);
my (@hits, %log_owner);
for my $f (@debian, $ours) {
    for my $g (globs_of($f)) {
        my $re = glob_re($g);
        push @hits, "$f: $g matches $_" for grep { $_ =~ $re } @never;
        push @{ $log_owner{$_} }, $f for grep { $_ =~ $re } @gateway_logs;
    }
}
is_deeply(\@hits, [], 'no logrotate glob matches a ledger, checkpoint, '
          . 'spool or key path');
for my $l (@gateway_logs) {
    is_deeply($log_owner{$l}, [ $ours ], "$l is rotated by ours alone");
}
# (and the test of the test: Debian's nginx glob would have taken
# /var/log/nginx/foxgov-access.log, the old example's log)
ok((grep { '/var/log/nginx/foxgov-access.log' =~ glob_re($_) }
    map { globs_of($_) } grep { -f } '/etc/logrotate.d/nginx'),
   'Debian\'s nginx glob matches /var/log/nginx/foxgov-access.log')
    if -f '/etc/logrotate.d/nginx';

$redis->stop;
done_testing();
