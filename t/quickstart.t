#!/usr/bin/perl

# The README's quickstart command (lua-free-scripts/quickstart), run as a
# newcomer runs it, non-interactively: it must end with a verified ledger
# and the cost per ticket, and the ledger must hold the flagship demo's
# evidence: every model and tool call of the ticket under one trace_id,
# the approval bound to the write's input hash.  Then: it runs a second
# time (a new ticket, the same ledger, still verified), `stop` leaves
# nothing running, Ctrl-C in the middle leaves nothing running, and it
# refuses a state directory that is a symlink and a port that is taken.
#
# The quickstart installs and builds what is missing: here it does so
# only when `install-deps --check` finds nothing missing (as in CI, after
# the test command installed everything); otherwise the test runs it with
# FOXGOV_QS_NO_INSTALL=1 on the build in build/.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Nginx qw(repo_root module_path nginx_binary);
use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov free_port);

my $top = repo_root();
my $qs = "$top/lua-free-scripts/quickstart";

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};
plan skip_all => 'no node' unless grep { -x "$_/node" } split /:/, $ENV{PATH};
plan skip_all => 'the demo\'s npm packages are missing '
    . '(cd demo/itsm-triage && npm ci)'
    unless -d "$top/demo/itsm-triage/node_modules/openai";

my $JSON = JSON::PP->new->utf8->canonical;

my $root = tempdir('foxgov-qs-XXXXXXXX', TMPDIR => 1,
                   CLEANUP => !$ENV{FOXGOV_TEST_KEEP});
chmod 0755, $root;    # nginx's workers (nobody, as root) reach the state
my $state = "$root/state";

my %env = (
    FOXGOV_STATE           => $state,
    FOXGOV_QS_GATEWAY_PORT => free_port(),
    FOXGOV_QS_MOCK_PORT    => free_port(),
    FOXGOV_QS_REDIS_PORT   => free_port(),
);
$env{FOXGOV_NGINX} = nginx_binary() if $ENV{FOXGOV_NGINX};
my $full = system("sh $top/lua-free-scripts/install-deps --check "
                  . ">/dev/null 2>&1") == 0;
$env{FOXGOV_QS_NO_INSTALL} = 1 unless $full;
diag($full ? 'the quickstart installs (nothing missing) and builds'
           : 'dependencies missing: FOXGOV_QS_NO_INSTALL=1');

# Start the quickstart with @args; its stdout and stderr go to a file.
sub spawn {
    my ($out, %extra) = @_;
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        @ENV{ keys %env } = values %env;
        @ENV{ keys %extra } = values %extra;
        delete $ENV{$_} for grep { !defined $ENV{$_} } keys %extra;
        open STDIN, '<', '/dev/null' or POSIX::_exit(126);
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        exec 'sh', $qs, @{ $extra{_args} // [] } or POSIX::_exit(127);
    }
    return $pid;
}

sub wait_exit {
    my ($pid, $timeout) = @_;
    my $deadline = time() + $timeout;
    while (time() < $deadline) {
        return $? >> 8 if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    return -1;
}

sub slurp { open my $f, '<', $_[0] or return ''; local $/; <$f> // '' }

my $runs = 0;
sub quickstart {
    my (@args) = @_;
    my $out = "$root/out-" . ++$runs;
    my $t0 = time();
    my $rc = wait_exit(spawn($out, _args => \@args), 300);
    return ($rc, slurp($out), time() - $t0);
}

sub port_open {
    return IO::Socket::INET->new(PeerAddr => "127.0.0.1:$_[0]",
                                 Timeout => 1) ? 1 : 0;
}

sub pids {
    my %p;
    for my $s (qw(redis mocks ledgerd nginx)) {
        my $v = slurp("$state/run/$s.pid");
        chomp $v;
        $p{$s} = $v if $v =~ /^\d+$/;
    }
    return %p;
}

sub all_ports_closed {
    return !grep { port_open($env{$_}) }
        qw(FOXGOV_QS_GATEWAY_PORT FOXGOV_QS_MOCK_PORT FOXGOV_QS_REDIS_PORT);
}

sub ledger_entries {
    my @e;
    open my $f, '<', "$state/ledger/acme/ledger.jsonl" or return ();
    while (my $l = <$f>) { push @e, $JSON->decode($l) }
    return @e;
}

my $ledger = "$state/ledger/acme/ledger.jsonl";
my @trusted = ('--checkpoints', "$state/ledger/acme/checkpoints",
               '--trusted-key', "$state/etc/checkpoint.jwks.json");

# ------------------------------------------------------------ run one

my ($rc, $out, $secs) = quickstart();
is($rc, 0, 'the quickstart ends with status 0') or diag($out);
diag(sprintf 'first run: %.1f s', $secs);
cmp_ok($secs, '<', 300, 'in under 5 minutes');

my ($number, $trace) = $out =~ /^ticket (INC\d{7})  trace ([0-9a-f]{32})$/m;
ok($number, "the demo triaged a new incident ($number)") or diag($out);
like($out, qr/^gateway\s+http:\/\/127\.0\.0\.1:$env{FOXGOV_QS_GATEWAY_PORT}\b/m,
     'it prints the gateway\'s address');
like($out, qr/^stop:\s+sh lua-free-scripts\/quickstart stop$/m,
     'and the stop command');
like($out, qr/^  read\s+$number .* ALLOW$/m, 'the agent read it: ALLOW');
like($out, qr/^  model\s+gpt-4o-mini-2024-07-18: software, priority 2, Messaging /m,
     'the mock model classified it, deterministically');
like($out, qr/^  write\s+held for an approver: 428 approval_required/m,
     'the write-back was held: 428');
like($out, qr/^  write\s+approved retry: $number now category software, priority 2, Messaging, state 2 ALLOW/m,
     'the approved retry wrote it back');
like($out, qr/^  deny\s+gpt-4o: 403 policy_denied: rule deny-unpinned-models: DENY$/m,
     'an unpinned model: DENY');
like($out, qr/^  throttle\s+read \d+: 429 rate_limited, Retry-After 60s: rule servicenow-read-rate: THROTTLE$/m,
     'a runaway poller: THROTTLE');
like($out, qr/^  approval \S+ by alice\@acme\.example is bound to input sha256 [0-9a-f]{64}, the write-back's request hash: bound$/m,
     'it shows the approval bound to the write');
like($out, qr/: verified bundle: tenant acme, trace $trace, 12 records/m,
     'the ticket\'s evidence bundle verifies');
like($out, qr/ledger\.jsonl: verified: tenant acme, \d+ records, .* checkpoints? verified/m,
     'the ledger verifies against its signed checkpoints');
like($out, qr/^$number\s+1\s+\d+\s+\d+\s+\d+\s+USD 0\.\d{6}$/m,
     'the cost of the ticket is reported');

# --------------------------------------------------- the ledger itself

($rc, my $vout, my $verr) = run_foxgov('verify', $ledger, @trusted);
is($rc, 0, 'foxgov verify, run here, accepts the ledger') or diag($verr);

my @entries = ledger_entries();
my @ticket = grep { ($_->{record}{labels}{ticket} // '') eq ($number // '') }
             @entries;
my @calls = grep { $_->{record}{record_type} =~ /CallRecord$/ } @ticket;
is(scalar @calls, 4, 'the ticket made four calls: read, model, write, '
   . 'approved write');
is_deeply([ sort map { $_->{record}{record_type} } @calls ],
          [ 'ModelCallRecord', ('ToolCallRecord') x 3 ],
          'one model call and three tool calls');
my @of_trace = grep { $_->{record}{trace}{trace_id} eq ($trace // '') }
               @entries;
is(scalar @of_trace, 12, 'its trace has 12 records in the ledger '
   . '(AuthContext, decision and call record of each call)');
is(scalar(grep { $_->{record}{trace}{trace_id} ne $trace } @ticket), 0,
   'every record labelled with the ticket carries the one trace_id');

my %by_hash = map { $_->{envelope_hash} => $_->{record} } @entries;
my ($held) = grep { $_->{record}{record_type} eq 'PolicyDecisionRecord'
                    && $_->{record}{decision} eq 'REQUIRE_HITL' } @of_trace;
my ($approved) = grep { $_->{record}{record_type} eq 'PolicyDecisionRecord'
                        && $_->{record}{input}{approval} } @of_trace;
ok($held && $approved, 'the held and the approved decisions are there');
if ($held && $approved) {
    my ($h, $a) = ($held->{record}, $approved->{record});
    is($a->{decision}, 'ALLOW', 'the approved write: ALLOW');
    is($a->{input}{approval}{input_sha256}, $a->{input}{request}{sha256},
       'the approval is bound to the write\'s input hash');
    is($a->{input}{request}{sha256}, $h->{input}{request}{sha256},
       'the same input as the held write');
    is($a->{input}{approval}{approval_id}, $h->{approval_request_id},
       'it answers the held write\'s approval request');
    is($a->{input}{approval}{approver}, 'alice@acme.example',
       'by the approver named');
}
for my $c (@calls) {
    my $d = $by_hash{ $c->{record}{policy_decision_sha256} };
    ok($d && $d->{trace}{trace_id} eq $trace,
       "call $c->{seq} links to its decision, same trace");
}

# the app never held a provider credential, and no secret is logged
my $app_token = slurp("$state/demo/app.token");
chomp $app_token;
my $openai_key = slurp("$state/etc/credentials/openai.key");
my $snow_token = slurp("$state/etc/credentials/servicenow.token");
my $mock_log = slurp("$state/logs/mock-requests.log");
like($mock_log, qr/"authorization":"Bearer \Q$openai_key\E"/,
     'the mock OpenAI got the gateway\'s key');
unlike($mock_log, qr/\Q$app_token\E/, 'and never the app\'s token');
my $logs = join '', map { slurp($_) } glob "$state/logs/*.log";
for ([ 'the app token', $app_token ], [ 'the OpenAI key', $openai_key ],
     [ 'the ServiceNow token', $snow_token ]) {
    my ($what, $secret) = @$_;
    my $in = grep { index(slurp($_), $secret) >= 0 }
             grep { !/mock-requests\.log$/ } glob "$state/logs/*.log";
    is($in, 0, "$what is in no log of the stack");
}
unlike($out, qr/\Q$app_token\E|\Q$openai_key\E/, 'nor in its output');

# ------------------------------------------------------------ run two

my %before = pids();
is(scalar keys %before, 4, 'the stack is left running: four pid files');
is(scalar(grep { kill 0, $_ } values %before), 4, 'all four alive');
my $n1 = scalar @entries;

($rc, $out, $secs) = quickstart();
is($rc, 0, 'a second run works') or diag($out);
like($out, qr/^==> stopping the previous run's stack$/m,
     'it stopped the first run\'s stack first');
my ($number2) = $out =~ /^ticket (INC\d{7})  trace [0-9a-f]{32}$/m;
ok($number2 && $number2 ne $number, "a new ticket ($number2)");
is(scalar(grep { kill 0, $_ } values %before), 0,
   'none of the first run\'s processes is left');
cmp_ok(scalar(ledger_entries()), '>', $n1, 'the same ledger grew');
($rc, undef, $verr) = run_foxgov('verify', $ledger, @trusted);
is($rc, 0, 'and still verifies, checkpoints of both runs included')
    or diag($verr);
like($out, qr/^$number\s+1\s.*\n$number2\s+1\s/m,
     'the cost is reported per ticket, both tickets');

# --------------------------------------------------------------- stop

my %running = pids();
($rc, $out) = quickstart('status');
is($rc, 0, 'status');
is(scalar(() = $out =~ /: running, pid \d+$/mg), 4, 'four running');
($rc, $out) = quickstart('stop');
is($rc, 0, 'stop') or diag($out);
is(scalar(grep { kill 0, $_ } values %running), 0, 'nothing left running');
ok(all_ports_closed(), 'no port left open');
($rc, $out) = quickstart('stop');
is($rc, 0, 'stop again: nothing to do, still 0');

# ------------------------------------------------------------- Ctrl-C

my $cout = "$root/out-ctrl-c";
my $pid = spawn($cout);
my $deadline = time() + 120;
sleep 0.1 until slurp($cout) =~ /^==> the flagship demo/m
                || time() > $deadline;
like(slurp($cout), qr/^==> the flagship demo/m, 'a run reached the demo');
my %mid = pids();
is(scalar keys %mid, 4, 'with its stack up');
kill 'INT', $pid;
$rc = wait_exit($pid, 60);
is($rc, 130, 'Ctrl-C ends it with status 130') or diag(slurp($cout));
like(slurp($cout), qr/stopping what it started/, 'saying it stops the stack');
is(scalar(grep { kill 0, $_ } values %mid), 0,
   'nothing is left running after Ctrl-C');
ok(all_ports_closed(), 'no port left open');

# ----------------------------------------------------------- refusals

my $link = "$root/link";
symlink $state, $link or die "symlink: $!";
($rc, $out) = (wait_exit(spawn("$root/out-link", FOXGOV_STATE => $link,
                               FOXGOV_QS_NO_INSTALL => 1), 60),
               slurp("$root/out-link"));
is($rc, 1, 'a state directory that is a symlink is refused');
like($out, qr/^quickstart: \Q$link\E is a symbolic link; refusing to use it$/m,
     'saying so');

my $taken = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
    LocalPort => $env{FOXGOV_QS_MOCK_PORT}, Listen => 1, ReuseAddr => 1)
    or die "listen: $!";
$rc = wait_exit(spawn("$root/out-taken", FOXGOV_QS_NO_INSTALL => 1), 120);
$out = slurp("$root/out-taken");
is($rc, 1, 'a taken port is refused');
like($out, qr/127\.0\.0\.1:$env{FOXGOV_QS_MOCK_PORT} is taken by another program/,
     'naming it');
close $taken;
ok(all_ports_closed(), 'and nothing is left running');
is(scalar(grep { kill 0, $_ } values %{ { pids() } }), 0, 'no process');

done_testing();
