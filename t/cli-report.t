#!/usr/bin/perl

# foxgov report cost: ModelCallRecords from the vectors and made here
# (schema-valid, canonicalized by foxgov canon), in ledgers whose chain
# is computed in Perl, summed per label value, model and tenant; the sums
# checked exactly (integer micro-units per currency); --since; a sum
# beyond 2^53-1 refused; a tampered ledger refused at its seq.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use JSON::PP ();
use Test::More;

use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov);
use FoxGov::Test::Ledger qw(:all);

plan skip_all => 'CLI not built' unless -x foxgov_bin();

my $dir = tempdir('foxgov-report-XXXXXXXX', TMPDIR => 1, CLEANUP => 1);
my $JSON = JSON::PP->new->utf8->canonical;

sub spew {
    my ($p, $c) = @_;
    open my $f, '>:raw', $p or die "$p: $!";
    print $f $c;
    close $f;
    return $p;
}

# ------------------------------------------------------------- records

my %flow;
for my $f (qw(openai-chat-completion anthropic-streaming openai-throttled
              servicenow-incident-read)) {
    my $call = $f =~ /^servicenow/ ? 'ToolCallRecord' : 'ModelCallRecord';
    $flow{$f} = [ map { vector_record($_, $f) }
                  'AuthContext', 'PolicyDecisionRecord', $call ];
}

# a model call like the openai vector's, with what a test needs changed
my $n = 0;
sub model_call {
    my (%o) = @_;
    my $r = record_data($flow{'openai-chat-completion'}[2]);
    $n++;
    $r->{execution_id} = sprintf('01973511-b5a2-7e11-abeb-%012d', $n);
    $r->{$_} = $o{$_} for grep { exists $o{$_} } keys %o;
    my $c = canon_record($r);
    my ($rc, $err) = validate_record($c);
    die "model_call is not valid: $err" if $rc != 0;
    return $c;
}

my $usage = sub { +{ input_tokens => $_[0], output_tokens => $_[1],
                     total_tokens => $_[2] } };

my $m4 = model_call(labels => { ticket => 'INC0012345' },
    cost => { currency => 'USD', amount_micros => 1000001,
              price_source => 'bundle:r9/prices.json' },
    usage => $usage->(10, 20, 30),
    started_at => '2025-06-04T10:00:00Z', finished_at => '2025-06-04T10:00:01Z');
my $m5 = model_call(labels => {}, model => 'gpt-4o-mini',
    cost => { currency => 'EUR', amount_micros => 7,
              price_source => 'bundle:r9/prices.json' },
    usage => $usage->(5, undef, 5),
    started_at => '2025-06-04T11:00:00Z', finished_at => '2025-06-04T11:00:01Z');
my $m6 = model_call(labels => { ticket => 'INC0099999' }, model => undef,
    cost => undef, usage => $usage->(undef, undef, undef), status => 400,
    outcome => 'denied', response => undef, response_model => undef,
    started_at => '2025-06-04T12:00:00Z', finished_at => '2025-06-04T12:00:00Z');

my @acme = (@{ $flow{'openai-chat-completion'} },
            @{ $flow{'anthropic-streaming'} },
            @{ $flow{'openai-throttled'} },
            @{ $flow{'servicenow-incident-read'} },
            $m4, $m5, $m6);
my $acme = write_ledger("$dir/acme.ledger", 'acme', @acme);

# the openai flow again as tenant globex's: links recomputed
my @globex;
{
    my ($a, $d, $m) = map { record_data($_) }
                      @{ $flow{'openai-chat-completion'} };
    $_->{tenant_id} = 'globex' for $a, $d, $m;
    $d->{input}{tenant_id} = 'globex';
    my $ac = canon_record($a);
    $d->{auth_context_sha256} = envelope_hash($ac);
    my $dc = canon_record($d);
    $m->{policy_decision_sha256} = envelope_hash($dc);
    $m->{cost} = { currency => 'USD', amount_micros => 500,
                   price_source => 'bundle:g1/prices.json' };
    $m->{usage} = $usage->(1, 2, 3);
    @globex = ($ac, $dc, canon_record($m));
}
my $globex = write_ledger("$dir/globex.ledger", 'globex', @globex);

for my $l ($acme, $globex) {
    my ($rc, $out, $err) = run_foxgov('verify', $l);
    is($rc, 0, "$l verifies") or diag($err);
}

sub report {
    my ($rc, $out, $err) = run_foxgov('report', 'cost', @_, '--json');
    is($rc, 0, "report cost @_ --json: exit 0") or diag($err);
    return eval { $JSON->decode($out) } // {};
}

sub sums {
    my (%o) = @_;
    return {
        calls => $o{calls},
        tokens => { input => $o{in} // 0, output => $o{out} // 0,
                    total => $o{total} // 0 },
        calls_without_usage => $o{no_usage} // 0,
        calls_unpriced => $o{unpriced} // 0,
        cost => { map { my ($cur, $m) = @$_;
                        $cur => { amount_micros => $m,
                                  amount => sprintf('%d.%06d',
                                      int($m / 1e6), $m % 1e6) } }
                  @{ $o{cost} // [] } },
        price_sources => $o{sources} // {},
        (exists $o{key} ? (key => $o{key}) : ()),
    };
}

my $vec_src = 'bundle:2025-06-02.1/prices.json';

# --------------------------------------------------------- by label

{
    my $r = report($acme, '--by', 'label', '--label', 'ticket');
    is($r->{by}, 'label', 'by label');
    is($r->{label}, 'ticket', 'the label key');
    is_deeply($r->{groups}, [
        sums(key => 'INC0012345', calls => 4,
             in => 1234 + 2048 + 10, out => 187 + 412 + 20,
             total => 1421 + 2460 + 30, no_usage => 1, unpriced => 1,
             cost => [['USD', 4955 + 12324 + 1000001]],
             sources => { $vec_src => 2, 'bundle:r9/prices.json' => 1 }),
        sums(key => 'INC0099999', calls => 1, no_usage => 1, unpriced => 1),
        sums(key => undef, calls => 1, in => 5, total => 5,
             cost => [['EUR', 7]],
             sources => { 'bundle:r9/prices.json' => 1 }),
    ], 'per ticket, calls without the label as null, sums exact')
        or diag(explain($r->{groups}));
    is_deeply($r->{total}, sums(calls => 6, in => 3297, out => 619,
              total => 3916, no_usage => 2, unpriced => 2,
              cost => [['EUR', 7], ['USD', 1017280]],
              sources => { $vec_src => 2, 'bundle:r9/prices.json' => 2 }),
              'the total: one sum per currency') or diag(explain($r->{total}));
    is($r->{total}{cost}{USD}{amount}, '1.017280',
       'amounts as exact decimal strings');
    is_deeply($r->{ledgers}, [{ tenant => 'acme', seq => scalar @acme,
              chain => record_data((ledger_lines('acme', @acme))[-1])->{chain} }],
              'the ledger and its head');

    my ($rc, $out) = run_foxgov('report', 'cost', $acme, '--by', 'label',
                                '--label', 'ticket');
    is($rc, 0, 'text: exit 0');
    like($out, qr/^ticket\s+calls\s+input_tokens\s+output_tokens\s+total_tokens\s+cost$/m,
         'text: a header');
    like($out, qr/^INC0012345\s+4\s+3292\s+619\s+3911\s+USD 1\.017280$/m,
         'text: the ticket\'s row');
    like($out, qr/^\(none\)\s+1\s+5\s+0\s+5\s+EUR 0\.000007$/m,
         'text: calls without the label as (none)');
    like($out, qr/^INC0099999\s+1\s+0\s+0\s+0\s+-$/m, 'text: unpriced: -');
    like($out, qr/^total\s+6\s+3297\s+619\s+3916\s+EUR 0\.000007 \+ USD 1\.017280$/m,
         'text: the total');
    like($out, qr/^calls without usage: 2, calls unpriced: 2$/m,
         'text: what is not counted');

    $r = report($acme, '--by', 'label', '--label', 'team');
    is_deeply([map { [$_->{key}, $_->{calls}] } @{ $r->{groups} }],
              [['service-desk', 3], [undef, 3]], 'by another label');
}

# a label value a terminal could take for a command is shown escaped
{
    my $odd = model_call(labels => { ticket => "INC\x{9b}2J\x{202e}x" },
        started_at => '2025-06-05T10:00:00Z');
    my $l = write_ledger("$dir/odd.ledger", 'acme',
                         @{ $flow{'openai-chat-completion'} }, $odd);
    my ($rc, $out) = run_foxgov('report', 'cost', $l, '--by', 'label',
                                '--label', 'ticket');
    like($out, qr/^INC\\u009b2J\\u202ex\s+1\s/m,
         'text: C1 controls and bidi overrides escaped');
    unlike($out, qr/\x9b|\xe2\x80\xae/, 'none of their bytes printed');
    my $r = report($l, '--by', 'label', '--label', 'ticket');
    is($r->{groups}[1]{key}, "INC\x{9b}2J\x{202e}x",
       'json: the value as recorded');
}

# --------------------------------------------------- by model, tenant

{
    my $r = report($acme, '--by', 'model');
    is($r->{label}, undef, 'by model: no label');
    is_deeply([map { [$_->{key}, $_->{calls}, $_->{tokens}{total},
                      $_->{cost}{USD}{amount_micros}] } @{ $r->{groups} }],
              [['claude-3-5-sonnet-20241022', 1, 2460, 12324],
               ['gpt-4o', 3, 1451, 1004956],
               ['gpt-4o-mini', 1, 5, undef],
               [undef, 1, 0, undef]],
              'per model, sorted, the model-less call last');

    $r = report($acme, $globex, '--by', 'tenant');
    is_deeply([map { [$_->{key}, $_->{calls}, $_->{tokens}{total},
                      $_->{cost}{USD}{amount_micros}] } @{ $r->{groups} }],
              [['acme', 6, 3916, 1017280], ['globex', 1, 3, 500]],
              'per tenant, over two ledgers');
    is($r->{total}{cost}{USD}{amount_micros}, 1017780, 'and in total');
    is(scalar @{ $r->{ledgers} }, 2, 'both ledgers named');

    my ($rc, $out, $err) = run_foxgov('report', 'cost', $acme, $acme,
                                      '--by', 'tenant');
    is($rc, 2, 'the same tenant\'s ledger twice: usage');
    like($err, qr/tenant acme was given already/, 'saying so');
}

# -------------------------------------------------------------- since

{
    my $r = report($acme, '--by', 'model', '--since', '2025-06-04T10:30:00Z');
    is_deeply([map { $_->{key} } @{ $r->{groups} }], ['gpt-4o-mini', undef],
              '--since: the calls started at or after it');
    is($r->{since}, '2025-06-04T10:30:00Z', 'json: since');
    $r = report($acme, '--by', 'model', '--since', '2025-06-04T11:00:00Z');
    is($r->{total}{calls}, 2, '--since is inclusive');
}

# ------------------------------------------------------ exact, bounded

{
    my $big = model_call(cost => { currency => 'USD',
        amount_micros => 9007199254740990, price_source => 'bundle:x/p' });
    my $one = model_call(cost => { currency => 'USD', amount_micros => 1,
        price_source => 'bundle:x/p' });
    my $l = write_ledger("$dir/big.ledger", 'acme',
                         @{ $flow{'openai-chat-completion'} }[0, 1], $big,
                         $one);
    my $r = report($l, '--by', 'tenant');
    is($r->{total}{cost}{USD}{amount_micros}, 9007199254740991,
       'a sum of 2^53-1 micros, exact');
    is($r->{total}{cost}{USD}{amount}, '9007199254.740991',
       'and its decimal amount');

    my $two = model_call(cost => { currency => 'USD', amount_micros => 1,
        price_source => 'bundle:x/p' });
    $l = write_ledger("$dir/over.ledger", 'acme',
                      @{ $flow{'openai-chat-completion'} }[0, 1], $big,
                      $one, $two);
    my ($rc, $out, $err) = run_foxgov('report', 'cost', $l, '--by',
                                      'tenant');
    is($rc, 1, 'beyond 2^53-1: refused, not rounded');
    like($err, qr/seq 5 \(line 5\): a sum exceeds 2\^53-1/, 'at the seq')
        or diag($err);
    is($out, '', 'nothing on stdout');
}

# ----------------------------------------------------------- tampered

{
    my @l = ledger_lines('acme', @acme);
    $l[2] =~ s/"amount_micros":4955/"amount_micros":4956/ or die 'no cost';
    my $bad = spew("$dir/tampered.ledger", join('', map { "$_\n" } @l));
    my ($rc, $out, $err) = run_foxgov('report', 'cost', $bad, '--by',
                                      'model');
    is($rc, 1, 'a tampered ledger: exit 1');
    like($err, qr/^foxgov report cost: \S+tampered\.ledger: seq 3 \(line 3\): /,
         'naming the seq') or diag($err);
    is($out, '', 'and nothing on stdout');
}

# -------------------------------------------------------------- usage

for my $args (['--by', 'label'], ['--by', 'model', '--label', 'ticket'],
              ['--by', 'cost'], ['--by', 'label', '--label', 'Ticket'],
              ['--by', 'model', '--since', 'today'],
              ['--by', 'model', '--tenant', '../x']) {
    my ($rc) = run_foxgov('report', 'cost', $acme, @$args);
    is($rc, 2, "report cost @$args: usage");
}
{
    my ($rc) = run_foxgov('report', 'cost', '--by', 'model');
    is($rc, 2, 'no ledger: usage');
    ($rc) = run_foxgov('report', 'cost', "$dir/nonexistent", '--by', 'model');
    is($rc, 2, 'no such ledger: usage');
    ($rc) = run_foxgov('report', 'price', $acme);
    is($rc, 2, 'an unknown report: usage');
    my $out;
    ($rc, $out) = run_foxgov('report', 'cost', '--help');
    is($rc, 0, '--help');
    like($out, qr/^usage: foxgov report cost LEDGER\.\.\. --by/, 'describes it');
}

done_testing();
