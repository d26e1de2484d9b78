using System.Diagnostics;
using Arch = HmmSim.Kernel.Arch;

namespace HmmSim.Cli.Scenarios;

/// <summary>Runs a <see cref="Scenario"/> under one design on a fresh <see cref="Machine"/>: processes
/// and files made at start, then each step through the public API, checked against its expectations.</summary>
internal sealed class ScenarioRunner
{
    private const ulong PageSize = Arch.PageSize;

    private readonly Scenario _scenario;
    private readonly DevicePrivateDesign _design;
    private readonly Dictionary<string, Process> _processes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ShmemFile> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ulong> _mappings = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dmirror> _handles = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _openFailures = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _buffers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _exited = new(StringComparer.Ordinal);
    private int _stepsRun;
    private int _expectationsMet;
    private string _iteration = "";
    private Errno _lastErrno;
    private string? _lastNote;
    private Func<IReadOnlyList<string>> _dmesg = () => [];
    private Machine? _machine;
    private readonly List<PageDump> _dumps = [];

    /// <summary>Set for the untimed warm-up run: the steps it may still run and when it must stop.</summary>
    private int _warmupSteps = -1;
    private readonly Stopwatch _warmupClock = new();

    /// <summary>Steps and time the untimed warm-up may take: enough to compile the paths a scenario
    /// uses, bounded so a long scenario does not run twice.</summary>
    public const int WarmupStepBudget = 64;
    public static readonly TimeSpan WarmupTimeBudget = TimeSpan.FromSeconds(2);

    private ScenarioRunner(Scenario scenario, DevicePrivateDesign design)
    {
        _scenario = scenario;
        _design = design;
    }

    /// <summary>Runs every design the scenario names, each on its own machine.</summary>
    public static ScenarioResult Run(Scenario scenario)
    {
        // An untimed warm-up under every design first (bounded in steps and time), so the time row
        // compares the designs rather than measuring JIT compilation in whichever runs first.
        foreach (var d in scenario.Machine.Designs)
        {
            if (Interrupt.Requested)
                break;
            Progress.Tick?.Invoke($"{d}: untimed warm-up");
            new ScenarioRunner(scenario, d) { _warmupSteps = WarmupStepBudget }.RunDesign();
        }
        var results = new List<DesignResult>();
        foreach (var d in scenario.Machine.Designs)
        {
            // After Ctrl-C the designs not yet started are left out of the partial summary.
            if (Interrupt.Requested)
                break;
            results.Add(new ScenarioRunner(scenario, d).RunDesign());
        }
        return new(scenario, results);
    }

    private DesignResult RunDesign()
    {
        _warmupClock.Start();
        var clock = Stopwatch.StartNew();
        StepFailure? failure = null;
        string? stoppedAt = null;
        long toDevice = 0, toRam = 0, checks = 0;
        ScenarioStep? current = null;
        Machine? machine = null;
        try
        {
            machine = new Machine(_scenario.Machine.ToConfig(_design));
            _dmesg = machine.Dmesg;
            _machine = machine;
            try
            {
                foreach (var name in _scenario.Processes)
                    _processes[name] = machine.CreateProcess();
                foreach (var (name, size) in _scenario.Files)
                    _files[name] = machine.CreateFile(size);
                stoppedAt = RunSteps(_scenario.Steps, s => current = s);
                current = null;
                machine.CheckInvariants();
            }
            catch (StepFailedException e)
            {
                failure = e.Failure;
            }
            catch (KernelBugException e)
            {
                failure = Failure(current, "kernel-bug", e.Message);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failure = Failure(current, "error", $"unexpected {e.GetType().Name}: {e.Message}");
            }
            var vs = machine.VmStat;
            toDevice = vs.GetValueOrDefault("device_migrate_to_device");
            toRam = vs.GetValueOrDefault("device_migrate_to_ram");
            checks = machine.InvariantChecks;
            try
            {
                foreach (var h in _handles.Values)
                    h.Dispose();
                foreach (var p in _processes.Values)
                    p.Dispose();
                foreach (var f in _files.Values)
                    f.Dispose();
            }
            catch (KernelBugException e) when (failure is null)
            {
                failure = new StepFailure("end", "exit", 0, "kernel-bug", null, null, "tearing down the processes: " + e.Message);
            }
            catch (Exception) when (failure is not null)
            {
                // The run already failed; what teardown says after that is noise.
            }
        }
        catch (KernelBugException e)
        {
            failure ??= new StepFailure("boot", "machine", 0, "kernel-bug", null, null, e.Message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            failure ??= new StepFailure("boot", "machine", 0, "error", null, null, $"the machine did not boot: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            try
            {
                machine?.Dispose();
            }
            catch (Exception e) when (failure is not null || e is KernelBugException)
            {
                failure ??= new StepFailure("end", "machine", 0, "kernel-bug", null, null, "machine teardown: " + e.Message);
            }
        }
        return new DesignResult(_design, failure is null, _stepsRun, _expectationsMet, toDevice, toRam, checks, stoppedAt, failure, clock.Elapsed, _dumps);
    }

    private StepFailure Failure(ScenarioStep? step, string kind, string message) =>
        step is null ? new StepFailure("end", "check", 0, kind, null, null, message)
            : new StepFailure(step.Index + _iteration, step.Op, step.Line, kind, null, null, message);

    /// <summary>Runs steps in order; returns where the scenario stopped by an expectation's "stop", or null.</summary>
    private string? RunSteps(IReadOnlyList<ScenarioStep> steps, Action<ScenarioStep> onStep)
    {
        foreach (var step in steps)
        {
            if (step.Designs is { } ds && !ds.Contains(_design))
                continue;
            // Ctrl-C: stop between steps, so the summary shows how far the run got.
            if (Interrupt.Requested)
                throw new StepFailedException(Failure(step, "interrupted", "interrupted (Ctrl-C) before this step"));
            if (_warmupSteps >= 0)
            {
                if (_warmupSteps-- == 0 || _warmupClock.Elapsed > WarmupTimeBudget)
                    throw new StepFailedException(Failure(step, "warm-up", "the warm-up ends here"));
            }
            onStep(step);
            Progress.Tick?.Invoke($"{_design}: step {step.Index}{_iteration}");
            if (step.Operation is RepeatOp repeat)
            {
                string outer = _iteration;
                for (int i = 1; i <= repeat.Count; i++)
                {
                    _iteration = $"{outer} (iteration {i} of {repeat.Count})";
                    if (RunSteps(repeat.Steps, onStep) is { } stopped)
                        return stopped;
                }
                _iteration = outer;
                continue;
            }
            _stepsRun++;
            _lastErrno = Errno.None;
            _lastNote = null;
            if (Execute(step))
                return $"step {step.Index}{_iteration} ({step.Op}, line {step.Line})" + (_lastErrno != Errno.None ? $": {_lastErrno}" : "") + (_lastNote is null ? "" : $" ({_lastNote})");
        }
        return null;
    }

    private StepFailedException Fail(ScenarioStep step, string message, object? expected = null, object? actual = null) =>
        new(new StepFailure(step.Index + _iteration, step.Op, step.Line, expected is null ? "error" : "expectation", expected?.ToString(), actual?.ToString(), message));

    private void Check<T>(ScenarioStep step, string what, T expected, T actual, bool counts)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual))
            throw Fail(step, what, expected, actual);
        if (counts)
            _expectationsMet++;
    }

    private void CheckErrno(ScenarioStep step, StepExpectation x, Errno actual)
    {
        _lastErrno = actual;
        Check(step, "errno", x.Errno ?? Errno.None, actual, x.Errno is not null);
    }

    /// <summary>The pages a step covers, for expect.pagemap: its "at" and length (a named mmap or
    /// mremap: the mapping it makes; a write: its bytes, or the first page when they come from a
    /// buffer). Null when the step has no address.</summary>
    public static (AddressExpr At, ulong? Length)? CoveredRange(ScenarioOp op) => op switch
    {
        RangeOp r => (r.At, r.Length),
        MmapOp { MappingName: { } name } m => (new AddressExpr(name, 0), m.Length),
        MmapOp { At: { } at } m => (at, m.Length),
        MremapOp { MappingName: { } name } m => (new AddressExpr(name, 0), m.NewLength),
        ReadOp r => (r.At, r.Length),
        WriteOp w => (w.At, w.Bytes is { } b ? (ulong)b.Length : null),
        PatternOp { At: { } at } p => (at, p.Length),
        DmirrorRangeOp d => (d.At, d.Pages * PageSize),
        _ => null,
    };

    /// <summary>Runs one step; true when its expectations say to stop here.</summary>
    private bool Execute(ScenarioStep step)
    {
        var x = step.ExpectFor(_design);
        var before = x.VmStat is null ? null : _machine!.VmStat;
        bool stop = ExecuteOperation(step, x);
        if (x.VmStat is { } counters)
            CheckVmStat(step, counters, before!);
        if (x.Pagemap is { } pm)
            CheckPagemap(step, pm);
        return stop;
    }

    /// <summary>expect.vmstat: each counter's change over the step.</summary>
    private void CheckVmStat(ScenarioStep step, IReadOnlyDictionary<string, long> counters, IReadOnlyDictionary<string, long> before)
    {
        var after = _machine!.VmStat;
        foreach (var (name, expected) in counters)
        {
            long b = before.GetValueOrDefault(name), a = after.GetValueOrDefault(name);
            if (a - b != expected)
                throw Fail(step, $"vmstat {name} over the step ({b} before, {a} after)", FormattableString.Invariant($"{expected:+#;-#;0}"), FormattableString.Invariant($"{a - b:+#;-#;0}"));
        }
        _expectationsMet++;
    }

    /// <summary>expect.pagemap: every page the step covers.</summary>
    private void CheckPagemap(ScenarioStep step, PagemapExpectation x)
    {
        var (at, length) = CoveredRange(step.Operation)!.Value;
        ulong start = Addr(step, at) & ~(PageSize - 1);
        ulong pages = length is { } l && l > 0 ? (l + PageSize - 1) / PageSize : 1;
        var p = Proc(step);
        for (ulong i = 0; i < pages; i++)
        {
            ulong addr = start + i * PageSize;
            var e = p.Pagemap(addr);
            string where = $"pagemap of {at}" + (i > 0 ? $"+0x{i * PageSize:x}" : "") + $" (0x{addr:x}, page {i} of {pages}; entry {e})";
            void Expect<T>(string field, T? expected, T actual) where T : struct
            {
                if (expected is { } v && !EqualityComparer<T>.Default.Equals(v, actual))
                    throw Fail(step, $"{where}: {field}", v, actual);
            }
            Expect("present", x.Present, e.Present);
            Expect("swapped", x.Swapped, e.Swapped);
            Expect("softDirty", x.SoftDirty, e.SoftDirty);
            Expect("exclusive", x.Exclusive, e.Exclusive);
            Expect("file", x.FileOrShared, e.FileOrShared);
            Expect("uffdWp", x.UffdWp, e.UffdWriteProtected);
            if (x.SwapType is { } st && e.SwapType != st)
                throw Fail(step, $"{where}: swapType", st, e.SwapType?.ToString() ?? "not swapped");
            if (x.Pfn is { } pfn)
            {
                if (pfn == PagemapExpectation.NonZero ? e.Pfn is null or 0 : e.Pfn != pfn)
                    throw Fail(step, $"{where}: pfn", pfn == PagemapExpectation.NonZero ? "nonzero" : $"0x{pfn:x}", e.Pfn is { } a ? $"0x{a:x}" : "none (not present)");
            }
        }
        _expectationsMet++;
    }

    private bool ExecuteOperation(ScenarioStep step, StepExpectation x)
    {
        switch (step.Operation)
        {
            case MmapOp op:
                {
                    var p = Proc(step);
                    ulong hint = op.At is { } at ? Addr(step, at) : 0;
                    ulong extra = op.Align > PageSize && !op.Flags.HasFlag(MapFlags.Fixed) ? op.Align : 0;
                    var file = op.File is null ? null : _files[op.File];
                    var err = p.Mmap(hint, op.Length + extra, op.Prot, op.Flags, out ulong mapped, file, op.Offset);
                    CheckErrno(step, x, err);
                    if (err == Errno.None && op.MappingName is not null)
                        _mappings[op.MappingName] = extra == 0 ? mapped : (mapped + op.Align - 1) & ~(op.Align - 1);
                    break;
                }
            case MunmapOp op:
                CheckErrno(step, x, Proc(step).Munmap(Addr(step, op.At), op.Length));
                break;
            case MprotectOp op:
                CheckErrno(step, x, Proc(step).Mprotect(Addr(step, op.At), op.Length, op.Prot));
                break;
            case MadviseOp op:
                CheckErrno(step, x, Proc(step).Madvise(Addr(step, op.At), op.Length, op.Advice));
                break;
            case MremapOp op:
                {
                    ulong newAt = op.NewAt is { Name: { } nn } && !_mappings.ContainsKey(nn) ? throw Fail(step, $"mapping \"{nn}\" has no address: its mmap did not succeed") : op.NewAt?.Resolve(_mappings) ?? 0;
                    var err = Proc(step).Mremap(Addr(step, op.At), op.OldLength, op.NewLength, op.Flags, newAt, out ulong result);
                    CheckErrno(step, x, err);
                    if (err == Errno.None && op.MappingName is not null)
                        _mappings[op.MappingName] = result;
                    break;
                }
            case ForkOp op:
                _processes[op.Child] = Proc(step).Fork();
                _exited.Remove(op.Child);
                break;
            case ExitOp:
                Proc(step).Dispose();
                _processes.Remove(step.Process);
                _exited.Add(step.Process);
                break;
            case ReadOp op:
                {
                    var buf = new byte[op.Length];
                    var p = Proc(step);
                    ulong a = Addr(step, op.At);
                    Cpu(step, x, () => p.Read(a, buf));
                    _buffers[op.Into] = buf;
                    break;
                }
            case WriteOp op:
                {
                    var p = Proc(step);
                    ulong a = Addr(step, op.At);
                    byte[] bytes = op.Bytes ?? Buffer(step, op.Buffer!);
                    Cpu(step, x, () => p.Write(a, bytes));
                    break;
                }
            case FillOp op:
                Fill(step, op, x);
                break;
            case VerifyOp op:
                Verify(step, op, x);
                break;
            case DmirrorOpenOp op:
                {
                    var p = Proc(step);
                    Errno err = Errno.None;
                    try
                    {
                        if (_handles.Remove(op.Handle, out var old))
                            old.Dispose();
                        _handles[op.Handle] = p.OpenDmirror(op.Unit);
                        _openFailures.Remove(op.Handle);
                    }
                    catch (ErrnoException e)
                    {
                        err = e.Errno;
                        _lastNote = _dmesg().LastOrDefault(l => l.StartsWith($"hmm_dmirror{op.Unit}: probe failed", StringComparison.Ordinal));
                        _openFailures[op.Handle] = $"its open of /dev/hmm_dmirror{op.Unit} at step {step.Index} failed with {e.Errno}" + (_lastNote is null ? "" : $" ({_lastNote})");
                    }
                    CheckErrno(step, x, err);
                    break;
                }
            case DmirrorCloseOp op:
                Dev(step, op.Handle).Dispose();
                _handles.Remove(op.Handle);
                _openFailures[op.Handle] = $"it was closed at step {step.Index}";
                break;
            case DmirrorReleaseOp op:
                CheckErrno(step, x, Dev(step, op.Handle).Release().Error);
                break;
            case DmirrorFlagsOp op:
                CheckErrno(step, x, Dev(step, op.Handle).SetFlags(op.Flags).Error);
                break;
            case DmirrorRangeOp op:
                DmirrorRange(step, op, x);
                break;
            case DumpOp op:
                {
                    ulong a = Addr(step, op.At);
                    _dumps.Add(new PageDump(step.Index + _iteration, step.Line, op.At.ToString(), a, Proc(step).DumpPageTables(a, op.Length)));
                    break;
                }
            default:
                throw new UnreachableException($"{step.Describe()}: no runner for {step.Operation.GetType().Name}");
        }
        return x.Stop;
    }

    private void DmirrorRange(ScenarioStep step, DmirrorRangeOp op, StepExpectation x)
    {
        var dev = Dev(step, op.Handle);
        ulong a = Addr(step, op.At), n = op.Pages;
        byte[] buf = op.Buffer is null ? [] : EnsureBuffer(op.Buffer, op.BufferBytes);
        var r = op.Ioctl switch
        {
            DmirrorIoctl.Read => dev.Read(a, n, buf),
            DmirrorIoctl.Write => dev.Write(a, n, buf),
            DmirrorIoctl.MigrateToDev => dev.MigrateToDevice(a, n, buf),
            DmirrorIoctl.MigrateToSys => dev.MigrateToSystem(a, n),
            DmirrorIoctl.Snapshot => dev.Snapshot(a, n, buf),
            DmirrorIoctl.Exclusive => dev.Exclusive(a, n, buf),
            _ => dev.CheckExclusive(a, n),
        };
        CheckErrno(step, x, r.Error);
        if (x.CPages is { } cp)
            Check(step, "cpages", cp, r.CPages, true);
        if (x.Faults is { } f)
            Check(step, "faults", f, r.Faults, true);
        if (x.Snapshot is { } snap)
        {
            for (int i = 0; i < snap.Count; i++)
            {
                byte actual = i < buf.Length ? buf[i] : (byte)0;
                if (actual != snap[i])
                    throw Fail(step, $"snapshot byte {i} (page at {op.At}+0x{(ulong)i * PageSize:x})", Prot(snap[i]), Prot(actual));
            }
            _expectationsMet++;
        }
    }

    private static string Prot(byte b)
    {
        if (b is 0 or 0xFF)
            return ((DmirrorProt)b).ToString();
        var kind = (DmirrorProt)(b & 0xF0);
        var bits = (DmirrorProt)(b & 0x0F);
        var parts = new List<string>();
        if (kind != 0)
            parts.Add(kind.ToString());
        foreach (var f in new[] { DmirrorProt.Read, DmirrorProt.Write, DmirrorProt.Pmd, DmirrorProt.Pud })
            if (bits.HasFlag(f))
                parts.Add(f.ToString());
        return $"{string.Join('|', parts)} (0x{b:x2})";
    }

    private void Fill(ScenarioStep step, FillOp op, StepExpectation x)
    {
        // The parser requires a length for every fill.
        var data = op.Pattern.Generate(checked((int)op.Length!.Value));
        if (op.At is { } at)
        {
            var p = Proc(step);
            ulong a = Addr(step, at);
            Cpu(step, x, () => p.Write(a, data));
            return;
        }
        var buf = EnsureBuffer(op.Buffer!, op.Offset + op.Length.Value);
        data.CopyTo(buf.AsSpan((int)op.Offset));
    }

    private void Verify(ScenarioStep step, VerifyOp op, StepExpectation x)
    {
        byte[] actual;
        string where;
        if (op.At is { } at)
        {
            actual = new byte[op.Length!.Value];
            var p = Proc(step);
            ulong a = Addr(step, at);
            if (!Cpu(step, x, () => p.Read(a, actual)))
                return;
            where = at.ToString();
        }
        else
        {
            var buf = Buffer(step, op.Buffer!);
            ulong len = op.Length ?? (ulong)buf.Length - Math.Min(op.Offset, (ulong)buf.Length);
            if (op.Offset + len > (ulong)buf.Length)
                throw Fail(step, $"buffer \"{op.Buffer}\" holds {buf.Length} bytes; cannot verify {len} bytes at offset {op.Offset}");
            actual = buf.AsSpan((int)op.Offset, (int)len).ToArray();
            where = $"buffer {op.Buffer}" + (op.Offset != 0 ? $"+0x{op.Offset:x}" : "");
        }
        var expected = op.Pattern.Generate(actual.Length);
        int i = actual.AsSpan().CommonPrefixLength(expected);
        if (i < actual.Length)
        {
            bool ints = op.Pattern.Kind != PatternKind.SeededRandom;
            if (ints)
            {
                i &= ~3;
                throw Fail(step, $"{where}: int {i / 4} (byte offset 0x{i:x}) of pattern {op.Pattern}",
                    BitConverter.ToInt32(expected, i), BitConverter.ToInt32(actual, i));
            }
            throw Fail(step, $"{where}: byte 0x{i:x} of pattern {op.Pattern}", $"0x{expected[i]:x2}", $"0x{actual[i]:x2}");
        }
        _expectationsMet++;
    }

    /// <summary>A CPU access: SIGSEGV is an outcome to check, not an error. True if the access completed.</summary>
    private bool Cpu(ScenarioStep step, StepExpectation x, Action access)
    {
        try
        {
            access();
        }
        catch (SegmentationFaultException e)
        {
            string sig = e is BusErrorException ? "SIGBUS" : "SIGSEGV";
            if (!x.Segv)
                throw Fail(step, "CPU access", "no fault", $"{sig} at 0x{e.Address:x}");
            _expectationsMet++;
            return false;
        }
        if (x.Segv)
            throw Fail(step, "CPU access", "SIGSEGV", "no fault");
        return true;
    }

    private Process Proc(ScenarioStep step)
    {
        if (_processes.TryGetValue(step.Process, out var p))
            return p;
        throw Fail(step, _exited.Contains(step.Process) ? $"process \"{step.Process}\" has exited" : $"process \"{step.Process}\" does not exist yet (no fork has made it)");
    }

    private Dmirror Dev(ScenarioStep step, string handle)
    {
        if (_handles.TryGetValue(handle, out var d))
            return d;
        throw Fail(step, $"handle \"{handle}\" is not open: " + (_openFailures.TryGetValue(handle, out var why) ? why : "no dmirror.open has run for it") +
            " (to end a design's run where an expected failure leaves nothing to do, add \"stop\": true to that step's expectation)");
    }

    private ulong Addr(ScenarioStep step, AddressExpr at) => at.Name is { } n && !_mappings.ContainsKey(n)
        ? throw Fail(step, $"mapping \"{n}\" has no address: its mmap did not succeed")
        : at.Resolve(_mappings);

    private byte[] Buffer(ScenarioStep step, string name) =>
        _buffers.TryGetValue(name, out var b) ? b : throw Fail(step, $"buffer \"{name}\" is empty: the step that fills it did not run");

    private byte[] EnsureBuffer(string name, ulong size)
    {
        if (!_buffers.TryGetValue(name, out var b) || (ulong)b.Length < size)
        {
            var nb = new byte[size];
            b?.CopyTo(nb, 0);
            _buffers[name] = b = nb;
        }
        return b;
    }
}
