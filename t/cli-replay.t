#!/usr/bin/perl

# foxgov replay: decisions made here with `foxgov decide` and a signed
# bundle, written to a ledger (the chain computed in Perl), are decided
# again with candidate bundles.  The same bundle changes nothing; a
# candidate that denies a tool lists each changed decision with the
# denying rule; --baseline compares two bundles; --since keeps the later
# decisions; --json is canonical and its comparison_id recomputes; a
# decision stopped by a gate before the bundle is kept; a body pointer
# the records cannot answer makes a decision not replayable; a tampered
# ledger is refused at its seq.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempdir);
use JSON::PP ();
use Test::More;

use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov keygen build_bundle);
use FoxGov::Test::Ledger qw(:all);

plan skip_all => 'CLI not built' unless -x foxgov_bin();

my $dir = tempdir('foxgov-replay-XXXXXXXX', TMPDIR => 1, CLEANUP => 1);
my $JSON = JSON::PP->new->utf8->canonical;

sub spew {
    my ($p, $c) = @_;
    open my $f, '>:raw', $p or die "$p: $!";
    print $f $c;
    close $f;
    return $p;
}

my ($pem, $jwks) = keygen("$dir/keys", 'bundle-key');
my ($opem, $ojwks) = keygen("$dir/keys", 'other-key');

# ------------------------------------------------------------- bundles

my @rules_r1 = (
    { id => 'allow-servicenow-read', decision => 'ALLOW',
      match => { tool => 'servicenow.incident', action => 'read' } },
    { id => 'hitl-servicenow-write-prod', decision => 'REQUIRE_HITL',
      match => { tool => 'servicenow.incident', action => 'write',
                 environment => 'prod' } },
    { id => 'allow-slack', decision => 'ALLOW',
      match => { tool => 'slack.chat', action => 'write' } },
    { id => 'allow-models', decision => 'ALLOW',
      match => { kind => 'model', model => { glob => 'gpt-4o*' } } },
);

my $r1 = build_bundle(dir => "$dir/r1", revision => 'r1', key => $pem,
    policy => { default => 'DENY', rules => [@rules_r1] });

# the candidate: Slack is denied
my $r2 = build_bundle(dir => "$dir/r2", revision => 'r2', key => $pem,
    policy => { default => 'DENY', rules => [@rules_r1,
        { id => 'deny-slack', decision => 'DENY',
          match => { tool => 'slack.chat' } } ] });

# a candidate that reads the request body, which r1 never recorded
my $r3 = build_bundle(dir => "$dir/r3", revision => 'r3', key => $pem,
    policy => { default => 'DENY', rules => [@rules_r1,
        { id => 'deny-big', decision => 'DENY',
          match => { 'body:/max_tokens' => { gt => 1000 } } } ] });

# ------------------------------------------------------------ decisions

my $auth = vector_record('AuthContext', 'openai-chat-completion');
my $auth_hash = envelope_hash($auth);

sub input {
    my (%o) = @_;
    my $model = ($o{kind} // 'tool') eq 'model';
    return {
        kind => $model ? 'model' : 'tool', tenant_id => 'acme',
        workspace_id => 'itsm', environment => $o{environment} // 'prod',
        principal => 'svc-triage', acr => undef,
        capabilities => ['tool:*', 'model:*'],
        provider => $model ? 'openai' : undef,
        model => $model ? $o{model} : undef,
        tool => $model ? undef : $o{tool},
        action => $model ? undef : $o{action},
        risk => undef, method => $model ? 'POST' : 'GET',
        host => 'api.acme.example', path => '/x',
        request => undef, body => $o{body} // {}, labels => {},
        approval => undef, counters => {},
    };
}

my $nin = 0;
sub decide {
    my ($bundle, $now, %o) = @_;
    my $in = spew("$dir/input-" . ++$nin . '.json', $JSON->encode(input(%o)));
    my ($rc, $out, $err) = run_foxgov('decide', '--bundle', $bundle,
        '--keys', $jwks, '--input', $in, '--now', $now,
        '--auth-context-sha256', $auth_hash);
    die "decide: $err" if $rc != 0;
    $out =~ s/\n\z//;
    return $out;
}

my @decisions = (
    decide($r1, '2026-11-22T10:00:00Z', tool => 'servicenow.incident',
           action => 'read'),
    decide($r1, '2026-11-22T10:01:00Z', tool => 'servicenow.incident',
           action => 'write'),
    decide($r1, '2026-11-22T10:02:00Z', tool => 'slack.chat',
           action => 'write'),
    decide($r1, '2026-11-22T10:03:00Z', kind => 'model', model => 'gpt-4o'),
    decide($r1, '2026-11-22T12:00:00Z', tool => 'slack.chat',
           action => 'write'),
);

# a call the capability gate stopped before the bundle ran
my $gated = record_data(decide($r1, '2026-11-22T09:00:00Z', kind => 'model',
                               model => 'gpt-4o-secret'));
$gated->{decision} = 'DENY';
$gated->{rule_ids} = [];
$gated->{gates_evaluated} = [ { gate => 'authn', result => 'pass' },
                              { gate => 'schema', result => 'pass' },
                              { gate => 'capability', result => 'fail' } ];
$gated->{justification} = 'capability gate: model:gpt-4o-secret not granted';
$gated = canon_record($gated);
{
    my ($rc, $err) = validate_record($gated);
    is($rc, 0, 'the gate-decided record is schema-valid') or diag($err);
}

my @records = ($auth, $gated, @decisions);
my $ledger = write_ledger("$dir/acme.ledger", 'acme', @records);
my %seq = (read => 3, write => 4, slack1 => 5, model => 6, slack2 => 7);

{
    my ($rc, $out, $err) = run_foxgov('verify', $ledger);
    is($rc, 0, 'the ledger verifies') or diag($err);
}

sub replay { return run_foxgov('replay', $ledger, @_) }

sub replay_json {
    my ($rc, $out, $err) = replay(@_, '--json');
    is($rc, 0, "replay @_ --json: exit 0") or diag($err);
    return ($out, eval { $JSON->decode($out) } // {});
}

sub counts {
    my (%c) = @_;
    return { map { $_ => $c{$_} // 0 }
             qw(ALLOW DENY REQUIRE_HITL REQUIRE_STEP_UP THROTTLE ROUTE) };
}

# ---------------------------------------------------------- no change

{
    my ($rc, $out, $err) = replay('--bundle', $r1, '--keys', $jwks);
    is($rc, 0, 'the same bundle: exit 0') or diag($err);
    like($out, qr/^decisions: 6 \(5 re-decided, 1 decided by a gate before the bundle\), 0 changed$/m,
         'six decisions, one kept as the gate decided it');
    like($out, qr/^no decision changes$/m, 'nothing changes');
    like($out, qr/^ALLOW\s+4\s+4$/m, 'ALLOW 4 before and after');
    like($out, qr/^DENY\s+1\s+1$/m, 'DENY 1 (the gate) before and after');
    like($out, qr/^REQUIRE_HITL\s+1\s+1$/m, 'REQUIRE_HITL 1');
    like($out, qr/^comparison_id [0-9a-f]{64}$/m, 'a comparison_id');
    like($out, qr/^baseline: the recorded decisions$/m,
         'compared with the recorded decisions');

    my (undef, $j) = replay_json('--bundle', $r1, '--keys', $jwks);
    is_deeply($j->{counts}{before}, counts(ALLOW => 4, DENY => 1,
              REQUIRE_HITL => 1), 'json: counts before');
    is_deeply($j->{counts}{after}, $j->{counts}{before},
              'json: the same after');
    is_deeply($j->{changed}, [], 'json: nothing changed');
    is($j->{unchanged}, 5, 'json: five unchanged');
    is($j->{gate_decided}, 1, 'json: one decided by a gate');
}

# ------------------------------------------------- a candidate denies

my ($text_out, $json_out, $j);
{
    my ($rc, $out, $err) = replay('--bundle', $r2, '--keys', $jwks);
    is($rc, 0, 'a candidate that changes decisions: still exit 0')
        or diag($err);
    $text_out = $out;
    like($out, qr/^decisions: 6 .*, 2 changed$/m, 'two decisions change');
    like($out, qr/^ALLOW\s+4\s+2$/m, 'ALLOW 4 -> 2');
    like($out, qr/^DENY\s+1\s+3$/m, 'DENY 1 -> 3');
    like($out, qr/^candidate: \S+r2, revision r2, sha256 [0-9a-f]{64}, signature verified$/m,
         'the candidate named');
    for my $k (qw(slack1 slack2)) {
        my $re = join '',
            qr/^seq $seq{$k} at \S+, execution \S+, trace [0-9a-f]{32}\n/m,
            qr/    tool slack\.chat write: ALLOW -> DENY\n/,
            qr/    before: rule allow-slack: ALLOW\n/,
            qr/    after:  rule deny-slack: DENY\n/,
            qr/    \+ deny-slack\n/;
        like($out, qr/$re/,
             "seq $seq{$k}: ALLOW -> DENY, caused by + deny-slack");
    }
    unlike($out, qr/^seq $seq{model} /m, 'the model call is not listed');
    unlike($out, qr/^    - /m, 'no rule stops counting');

    ($json_out, $j) = replay_json('--bundle', $r2, '--keys', $jwks);
    my @c = @{ $j->{changed} // [] };
    is(scalar @c, 2, 'json: two changes');
    is_deeply([map { $_->{seq} } @c], [@seq{qw(slack1 slack2)}],
              'json: in seq order');
    my $d = record_data($decisions[2]);
    is($c[0]{execution_id}, $d->{execution_id}, 'json: execution_id');
    is($c[0]{trace_id}, $d->{trace}{trace_id}, 'json: trace_id');
    is($c[0]{decided_at}, '2026-11-22T10:02:00.000Z', 'json: decided_at');
    is($c[0]{tool}, 'slack.chat', 'json: tool');
    is($c[0]{before}{decision}, 'ALLOW', 'json: before ALLOW');
    is_deeply($c[0]{before}{rule_ids}, ['allow-slack'],
              'json: the recorded rule ids');
    is($c[0]{after}{decision}, 'DENY', 'json: after DENY');
    is_deeply($c[0]{after}{rule_ids}, ['allow-slack', 'deny-slack'],
              'json: every rule that counts after');
    is_deeply($c[0]{rules_added}, ['deny-slack'], 'json: rules_added');
    is_deeply($c[0]{rules_removed}, [], 'json: rules_removed');
    is($j->{candidate}{revision}, 'r2', 'json: candidate revision');
    ok($j->{candidate}{verified}, 'json: candidate verified');
    is($j->{baseline}, undef, 'json: baseline null (the records)');
    is($j->{ledger}{tenant}, 'acme', 'json: ledger tenant');
    is($j->{ledger}{seq}, scalar @records, 'json: ledger head seq');
    my @l = ledger_lines('acme', @records);
    is($j->{ledger}{chain}, record_data($l[-1])->{chain},
       'json: the chain head');
}

# --------------------------------------------- canonical, comparison_id

{
    chomp(my $body = $json_out);
    my ($rc, $canon) = run_foxgov({ stdin => $body }, 'canon');
    is($canon, $body, '--json is canonical (RFC 8785)');

    my %copy = %$j;
    my $id = delete $copy{comparison_id};
    like($id, qr/^[0-9a-f]{64}$/, 'comparison_id is 64 hex digits');
    (undef, $canon) = run_foxgov({ stdin => $JSON->encode(\%copy) }, 'canon');
    is(sha256_hex($canon), $id,
       'comparison_id = sha256 of the canonical comparison without it');
    like($text_out, qr/^comparison_id $id$/m,
         'the text output prints the same comparison_id');

    my (undef, $again) = replay_json('--bundle', $r2, '--keys', $jwks);
    is($again->{comparison_id}, $id, 'the same comparison, the same id');
}

# ----------------------------------------------------------- baseline

{
    my ($rc, $out, $err) = replay('--bundle', $r1, '--baseline', $r2,
                                  '--keys', $jwks);
    is($rc, 0, '--baseline r2 --bundle r1') or diag($err);
    like($out, qr/^baseline: \S+r2, revision r2, /m, 'the baseline named');
    my $re = join '', qr/^    tool slack\.chat write: DENY -> ALLOW\n/m,
        qr/    before: rule deny-slack: DENY\n/,
        qr/    after:  rule allow-slack: ALLOW\n/,
        qr/    - deny-slack\n/;
    like($out, qr/$re/,
         'DENY -> ALLOW, caused by - deny-slack');

    my (undef, $b) = replay_json('--bundle', $r1, '--baseline', $r2,
                                 '--keys', $jwks);
    is_deeply($b->{counts}{before}, counts(ALLOW => 2, DENY => 3,
              REQUIRE_HITL => 1), 'json: before is the baseline\'s');
    is_deeply($b->{counts}{after}, counts(ALLOW => 4, DENY => 1,
              REQUIRE_HITL => 1), 'json: after is the candidate\'s');
    is_deeply([map { $_->{rules_removed} } @{ $b->{changed} }],
              [['deny-slack'], ['deny-slack']], 'json: rules_removed');
    is($b->{baseline}{revision}, 'r2', 'json: baseline revision');
    isnt($b->{comparison_id}, $j->{comparison_id}, 'another comparison_id');

    (undef, $b) = replay_json('--bundle', $r2, '--baseline', $r2,
                              '--keys', $jwks);
    is_deeply($b->{changed}, [], 'baseline and candidate the same: no change');
}

# -------------------------------------------------------------- since

{
    my (undef, $s) = replay_json('--bundle', $r2, '--keys', $jwks,
                                 '--since', '2026-11-22T11:00:00Z');
    is($s->{decisions}, 1, '--since: one decision at or after it');
    is_deeply([map { $_->{seq} } @{ $s->{changed} }], [$seq{slack2}],
              '--since: only the later Slack call');
    is($s->{since}, '2026-11-22T11:00:00Z', 'json: since');

    (undef, $s) = replay_json('--bundle', $r2, '--keys', $jwks,
                              '--since', '2026-11-22T10:02:00Z');
    is($s->{decisions}, 3, '--since is inclusive');

    my ($rc, $out, $err) = replay('--bundle', $r2, '--keys', $jwks,
                                  '--since', '2026-11-22T11:00:00Z');
    like($out, qr/^since: 2026-11-22T11:00:00Z$/m, 'the text names --since');
    like($out, qr/^decisions: 1 \(1 re-decided, 0 decided by a gate/m,
         'and counts one decision');
}

# -------------------------------------------------- drafts, keys, usage

{
    my (undef, $d) = replay_json('--bundle', $r2);
    ok(!$d->{candidate}{verified}, 'without --keys: read as a draft');
    is(scalar @{ $d->{changed} }, 2, 'with the same result');

    my ($rc, $out, $err) = replay('--bundle', $r2, '--keys', $ojwks);
    is($rc, 2, 'a candidate that does not verify: exit 2');
    like($err, qr/^foxgov replay: \S+r2: .*signature/, 'saying why');
    is($out, '', 'nothing on stdout');

    ($rc, $out, $err) = replay('--keys', $jwks);
    is($rc, 2, 'no --bundle: usage');
    ($rc, $out, $err) = replay('--bundle', $r2, '--since', 'yesterday');
    is($rc, 2, 'a bad --since: usage');
    ($rc, $out, $err) = replay('--bundle', $r2, '--tenant', 'ACME');
    is($rc, 2, 'a bad --tenant: usage');
    ($rc, $out, $err) = run_foxgov('replay', "$dir/nonexistent",
                                   '--bundle', $r2);
    is($rc, 2, 'no such ledger: usage');
    ($rc, $out, $err) = replay('--bundle', $r2, '--tenant', 'other');
    is($rc, 1, 'read as another tenant\'s: refused');
    like($err, qr/seq 1 \(line 1\): /, 'at seq 1');
    ($rc, $out) = run_foxgov('replay', '--help');
    is($rc, 0, '--help');
    like($out, qr/^usage: foxgov replay LEDGER --bundle CANDIDATE/,
         'describes the command');
}

# a recorded justification a terminal could take for a command: escaped
{
    my $d = record_data($decisions[2]);
    $d->{justification} = "rule allow-slack: ALLOW\x{9b}2J\x{202e}";
    my $l = write_ledger("$dir/odd.ledger", 'acme', $auth, canon_record($d));
    my ($rc, $out, $err) = run_foxgov('replay', $l, '--bundle', $r2);
    is($rc, 0, 'a record with C1 controls in its justification') or diag($err);
    like($out, qr/^    before: rule allow-slack: ALLOW\\u009b2J\\u202e$/m,
         'text: shown escaped');
    unlike($out, qr/\x9b|\xe2\x80\xae/, 'none of their bytes printed');
}

# ------------------------------------------------------------ tampered

{
    my @l = ledger_lines('acme', @records);
    my $i = $seq{slack1} - 1;
    $l[$i] =~ s/"slack\.chat"/"slack.chaT"/ or die 'no tool in the line';
    my $bad = spew("$dir/tampered.ledger", join('', map { "$_\n" } @l));
    my ($rc, $out, $err) = run_foxgov('replay', $bad, '--bundle', $r2);
    is($rc, 1, 'a tampered ledger: exit 1');
    like($err, qr/^foxgov replay: \S+tampered\.ledger: seq $seq{slack1} \(line $seq{slack1}\): /,
         'naming the seq') or diag($err);
    is($out, '', 'and nothing on stdout');

    @l = ledger_lines('acme', @records);
    splice @l, 3, 1;
    $bad = spew("$dir/cut.ledger", join('', map { "$_\n" } @l));
    ($rc, $out, $err) = run_foxgov('replay', $bad, '--bundle', $r2);
    is($rc, 1, 'a line deleted: exit 1');
    like($err, qr/seq 5 \(line 4\)/, 'where it was') or diag($err);

    $bad = spew("$dir/empty.ledger", '');
    ($rc, $out, $err) = run_foxgov('replay', $bad, '--bundle', $r2);
    is($rc, 1, 'an empty ledger: exit 1');
}

# ------------------------------------------------------- body pointers

{
    my ($rc, $out, $err) = replay('--bundle', $r3, '--keys', $jwks);
    is($rc, 1, 'a candidate reading a body pointer r1 never recorded: exit 1');
    like($err, qr/seq $seq{read}: cannot be re-decided: \S+r3 reads body:\/max_tokens/,
         'naming the first decision and the pointer') or diag($err);
    is($out, '', 'nothing on stdout');

    ($rc, $out, $err) = replay('--bundle', $r3, '--baseline', $r1,
                               '--keys', $jwks);
    is($rc, 1, 'with r1 as baseline, r1 is known not to read it: exit 1');

    # decisions of r3 itself: the pointer is absent where it did not resolve
    my @d3 = (
        decide($r3, '2026-11-23T10:00:00Z', kind => 'model',
               model => 'gpt-4o'),
        decide($r3, '2026-11-23T10:01:00Z', kind => 'model',
               model => 'gpt-4o', body => { '/max_tokens' => 800 }),
    );
    my $l3 = write_ledger("$dir/r3.ledger", 'acme', $auth, @d3);

    # r4: the limit lowered to 500
    my $r4 = build_bundle(dir => "$dir/r4", revision => 'r4', key => $pem,
        policy => { default => 'DENY', rules => [@rules_r1,
            { id => 'deny-big', decision => 'DENY',
              match => { 'body:/max_tokens' => { gt => 500 } } } ] });

    ($rc, $out, $err) = run_foxgov('replay', $l3, '--bundle', $r4, '--json');
    is($rc, 0, 'a later record shows the recorded bundle reads the pointer')
        or diag($err);
    my $p = eval { $JSON->decode($out) } // {};
    is_deeply([map { [$_->{seq}, $_->{before}{decision},
                      $_->{after}{decision}, $_->{rules_added}] }
               @{ $p->{changed} }],
              [[3, 'ALLOW', 'DENY', ['deny-big']]],
              'max_tokens 800 is now denied; the call without it is not');

    $l3 = write_ledger("$dir/r3-one.ledger", 'acme', $auth, $d3[0]);
    ($rc, $out, $err) = run_foxgov('replay', $l3, '--bundle', $r4);
    is($rc, 1, 'alone, the call without max_tokens cannot be re-decided');
    like($err, qr/seq 2: cannot be re-decided: .*give that bundle as --baseline/,
         'and the message says what would tell') or diag($err);
    ($rc, $out, $err) = run_foxgov('replay', $l3, '--bundle', $r4,
                                   '--baseline', $r3);
    is($rc, 0, 'with its bundle as --baseline it can') or diag($err);
    like($out, qr/^no decision changes$/m, 'and does not change');
}

done_testing();
