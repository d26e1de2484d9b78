using System.Globalization;
using System.Text.Json.Nodes;
using HmmSim.Cli.Scenarios;

namespace HmmSim.Cli.Explore;

/// <summary>Runs a list of <see cref="RandomOp"/> on a fresh machine against a reference model of
/// every process's window (the ideas of DeviceModelBasedTests: every byte a CPU load, a device READ,
/// MIGRATE_TO_DEV or EXCLUSIVE returns is compared with the model; errnos and SIGSEGVs predicted; the
/// snapshot's invariants checked; DEBUG_VM after every operation; the leak check at teardown).
/// Every API call it makes is also written down as a scenario step (docs/scenarios.md) with the
/// outcome it had, and the failing call with the outcome the model wanted, so the trace of a
/// failing run is a scenario that `hmmsim run` replays to the same failure.</summary>
internal sealed class ModelRun
{
    private const int PageSize = 4096;
    private const int Units = 2;
    private static readonly Prot[] _prots = [Prot.None, Prot.Read, Prot.Read | Prot.Write];

    private sealed class RefPage(Prot prot)
    {
        public Prot Prot = prot;
        /// <summary>The seeded-random pattern's seed of the page's bytes; 0 for zeros.</summary>
        public int Seed;
        /// <summary>EXCLUSIVE may have left a device-exclusive entry nothing has restored since.</summary>
        public bool MaybeExclusive;
        public RefPage Clone() => new(Prot) { Seed = Seed };
    }

    private sealed class Proc(string name, Process process)
    {
        public readonly string Name = name;
        public readonly Process Process = process;
        public Dictionary<int, RefPage> Pages = [];
        public readonly Dmirror?[] Dev = new Dmirror?[Units];
        /// <summary>Pages whose unit-u mirror entry is what MIGRATE_TO_DEV stored, nothing since having
        /// invalidated it: a device READ of them does not reach test_hmm's unmirrored-page path.</summary>
        public readonly HashSet<int>[] Mirrored = [[], []];
        public string Handle(int unit) => $"{Name}.u{unit}";
    }

    /// <summary>Thrown inside the run when a check fails; carries the failure.</summary>
    private sealed class CheckFailed(ModelFailure failure) : Exception(failure.Message)
    {
        public ModelFailure Failure { get; } = failure;
    }

    private readonly MachineConfig _config;
    private readonly List<Proc> _procs = [];
    private readonly List<JsonObject> _trace = [];
    private readonly Dictionary<int, byte[]> _patterns = [];
    private int _forks;
    private Func<RandomOp, bool>? _forgetWrite;
    private int _step;

    private ModelRun(MachineConfig config) => _config = config;

    /// <summary>The outcome: null failure when every check held. <see cref="Scenario"/> is the trace as
    /// a scenario file's JSON.</summary>
    public sealed record Outcome(ModelFailure? Failure, JsonObject Scenario, int StepsRun, Coverage Done);

    /// <summary>How many device operations succeeded and had their data checked: a run whose device
    /// paths all failed would check little.</summary>
    public readonly record struct Coverage(int MigratedToDevice, int DeviceReads, int DeviceWrites, int Exclusive, int Forks);

    private Coverage _done;

    /// <summary>Runs the ops. <paramref name="forgetWrite"/> is for tests of the explorer itself: a CPU
    /// write it picks is done but not put in the model, a wrong model that the next read exposes.</summary>
    public static Outcome Execute(IReadOnlyList<RandomOp> ops, DevicePrivateDesign design, DesignVariants variants, Func<RandomOp, bool>? forgetWrite = null)
    {
        var config = new MachineConfig { DevicePrivateDesign = design, Variants = variants, CheckInvariants = true };
        return new ModelRun(config) { _forgetWrite = forgetWrite }.Run(ops);
    }

    private Outcome Run(IReadOnlyList<RandomOp> ops)
    {
        ModelFailure? failure = null;
        string op = "machine";
        Machine? machine = null;
        try
        {
            machine = new Machine(_config);
            try
            {
                var root = new Proc("p0", machine.CreateProcess());
                _procs.Add(root);
                _step = -1;
                op = "setup";
                MapFixed(root, 0, 64);
                MapFixed(root, 128, 32);
                MapThp(root);
                Open(root);
                for (_step = 0; _step < ops.Count; _step++)
                {
                    op = ops[_step].Kind.ToString();
                    DoStep(ops[_step]);
                }
                _step = ops.Count;
                op = "final verify";
                foreach (var pr in _procs)
                    for (int i = 0; i < RandomSequence.WindowPages; i++)
                        CpuRead(pr, i, emitAlways: false);
                op = "check";
                machine.CheckInvariants();
            }
            catch (CheckFailed e)
            {
                failure = e.Failure;
            }
            catch (KernelBugException e)
            {
                failure = new ModelFailure("kernel-bug", LastOp(op), _step, e.Message);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failure = new ModelFailure("error", LastOp(op), _step, $"{e.GetType().Name}: {e.Message}");
            }
            try
            {
                foreach (var pr in _procs)
                {
                    foreach (var d in pr.Dev)
                        d?.Dispose();
                    pr.Process.Dispose();
                }
            }
            catch (KernelBugException e) when (failure is null)
            {
                failure = new ModelFailure("teardown", "exit", _step, "tearing down the processes: " + e.Message);
            }
            catch (Exception) when (failure is not null)
            {
                // Already failed; teardown after a failure says nothing new.
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException && failure is null)
        {
            failure = new ModelFailure(e is KernelBugException ? "kernel-bug" : "error", "machine", _step, $"the machine did not boot: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            try
            {
                machine?.Dispose();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failure ??= new ModelFailure("teardown", "machine", _step, "machine teardown: " + e.Message);
            }
        }
        return new Outcome(failure, ScenarioJson(), Math.Max(0, _step), _done);
    }

    private string LastOp(string fallback) => _trace.Count > 0 ? (string)_trace[^1]["op"]! : fallback;

    // ---- the scenario trace ----

    private JsonObject ScenarioJson()
    {
        var machine = new JsonObject { ["designs"] = _config.DevicePrivateDesign.ToString(), ["checkInvariants"] = true };
        var variants = new JsonObject();
        foreach (var (name, value) in VariantSwitches.Settings(_config.Variants))
            variants[name] = value;
        if (variants.Count > 0)
            machine["variants"] = variants;
        var steps = new JsonArray();
        foreach (var s in _trace)
            steps.Add(s);
        return new JsonObject
        {
            ["name"] = "explore reproducer",
            ["machine"] = machine,
            ["processes"] = new JsonArray(JsonValue.Create("p0")),
            ["steps"] = steps,
        };
    }

    private static string Hex(ulong v) => "0x" + v.ToString("x", CultureInfo.InvariantCulture);

    private static ulong Addr(int page) => RandomSequence.WindowBase + ((ulong)page * PageSize);

    private JsonObject Emit(string op, Proc pr, bool onHandle = false)
    {
        var s = new JsonObject { ["op"] = op };
        if (!onHandle)
            s["process"] = pr.Name;
        s["comment"] = $"random step {_step}";
        _trace.Add(s);
        return s;
    }

    private JsonObject EmitRange(string op, Proc pr, int unit, int s, int n, string? buffer)
    {
        var j = Emit(op, pr, onHandle: true);
        j["handle"] = pr.Handle(unit);
        j["at"] = Hex(Addr(s));
        j["pages"] = n;
        if (buffer is not null)
            j["buffer"] = buffer;
        return j;
    }

    private static void Expect(JsonObject step, string field, JsonNode value)
    {
        if (step["expect"] is not JsonObject x)
            step["expect"] = x = [];
        x[field] = value;
    }

    private static void ExpectErrno(JsonObject step, Errno errno)
    {
        if (errno != Errno.None)
            Expect(step, "errno", errno.ToString());
    }

    private CheckFailed Fail(string kind, string op, string message) => new(new ModelFailure(kind, op, _step, message));

    /// <summary>The errno check: the step says what the model wanted, and on a mismatch the run fails there.</summary>
    private void CheckErrno(JsonObject step, Errno expected, Errno actual, string where)
    {
        ExpectErrno(step, expected);
        if (expected != actual)
            throw Fail("errno", (string)step["op"]!, $"{where}: expected {expected}, got {actual}");
    }

    /// <summary>A check the model makes loosely (more than one outcome is right): the step records what
    /// happened, so the replay takes the same path.</summary>
    private static void Record(JsonObject step, Errno actual) => ExpectErrno(step, actual);

    private byte[] Pattern(int seed)
    {
        if (!_patterns.TryGetValue(seed, out var bytes))
            _patterns[seed] = bytes = seed == 0 ? new byte[PageSize] : new FillPattern(PatternKind.SeededRandom, 0, 0, seed).Generate(PageSize);
        return bytes;
    }

    private static void SetPattern(JsonObject step, int seed)
    {
        if (seed == 0)
        {
            step["pattern"] = "constant";
            step["value"] = 0;
        }
        else
        {
            step["pattern"] = "seeded-random";
            step["seed"] = seed;
        }
    }

    // ---- the steps ----

    private void DoStep(RandomOp op)
    {
        var pr = _procs[op.Proc % _procs.Count];
        int u = op.Unit;
        int s = op.Start, n = op.Count;
        bool keepMirrors = false;
        switch (op.Kind)
        {
            case RandomOpKind.CpuWrite:
                CpuWrite(pr, s, op.Arg, _forgetWrite?.Invoke(op) == true);
                break;
            case RandomOpKind.CpuRead:
                CpuRead(pr, s, emitAlways: true);
                break;
            case RandomOpKind.DevRead:
                keepMirrors = DeviceRead(pr, u, s, n);
                break;
            case RandomOpKind.DevWrite:
                DeviceWrite(pr, u, s, n, op.Arg);
                break;
            case RandomOpKind.MigrateToDev:
                MigrateToDevice(pr, u, s, n);
                keepMirrors = true;
                break;
            case RandomOpKind.MigrateToSys:
                MigrateToSystem(pr, u, s, n);
                break;
            case RandomOpKind.Exclusive:
                Exclusive(pr, u, s, n);
                break;
            case RandomOpKind.Snapshot:
                SnapshotAndCheck(pr, u, s, n);
                keepMirrors = true;
                break;
            case RandomOpKind.Mprotect:
                Mprotect(pr, s, n, _prots[op.Arg % _prots.Length]);
                break;
            case RandomOpKind.ForkOrExit:
                ForkOrExit(pr, op.Proc);
                break;
            case RandomOpKind.Munmap:
                Munmap(pr, s, n);
                break;
            case RandomOpKind.DontNeed:
                DontNeed(pr, s, n);
                break;
            default:
                if (op.Arg % 3 == 0)
                    MapThp(pr);
                else
                    MapFixed(pr, s, n);
                break;
        }
        if (!keepMirrors)
        {
            // Any operation may invalidate a mirror (in this mm or a relative's, through rmap).
            foreach (var p in _procs)
                foreach (var set in p.Mirrored)
                    set.Clear();
        }
    }

    private void MapFixed(Proc pr, int s, int n)
    {
        var step = Emit("mmap", pr);
        step["at"] = Hex(Addr(s));
        step["length"] = n * PageSize;
        step["flags"] = "Private|Anonymous|Fixed";
        var err = pr.Process.Mmap(Addr(s), (ulong)n * PageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, out _);
        CheckErrno(step, Errno.None, err, $"mmap [{s}, +{n})");
        for (int i = s; i < s + n; i++)
            pr.Pages[i] = new RefPage(Prot.Read | Prot.Write);
    }

    private void MapThp(Proc pr)
    {
        MapFixed(pr, RandomSequence.ThpFirst, RandomSequence.ThpPages);
        var step = Emit("madvise", pr);
        step["at"] = Hex(Addr(RandomSequence.ThpFirst));
        step["length"] = RandomSequence.ThpPages * PageSize;
        step["advice"] = "HugePage";
        CheckErrno(step, Errno.None, pr.Process.Madvise(Addr(RandomSequence.ThpFirst), (ulong)RandomSequence.ThpPages * PageSize, Advice.HugePage), "MADV_HUGEPAGE");
    }

    private void Open(Proc pr)
    {
        for (int u = 0; u < Units; u++)
        {
            var step = Emit("dmirror.open", pr);
            step["unit"] = u;
            step["handle"] = pr.Handle(u);
            try
            {
                pr.Dev[u] = pr.Process.OpenDmirror(u);
            }
            catch (ErrnoException e)
            {
                CheckErrno(step, Errno.None, e.Errno, $"open /dev/hmm_dmirror{u}");
            }
        }
    }

    private static bool Readable(Proc pr, int page) => pr.Pages.TryGetValue(page, out var pg) && (pg.Prot & Prot.Read) != 0;

    private static bool Writable(Proc pr, int page) => pr.Pages.TryGetValue(page, out var pg) && (pg.Prot & Prot.Write) != 0;

    /// <summary>A CPU access; true when it faulted (SIGSEGV or SIGBUS).</summary>
    private static bool Faults(Action access)
    {
        try
        {
            access();
            return false;
        }
        catch (SegmentationFaultException)
        {
            return true;
        }
    }

    private void CheckSegv(JsonObject step, bool expected, bool actual, string where)
    {
        if (expected)
            Expect(step, "segv", true);
        if (expected != actual)
            throw Fail("segv", (string)step["op"]!, $"{where}: expected {(expected ? "SIGSEGV" : "no fault")}, got {(actual ? "SIGSEGV" : "no fault")}");
    }

    private void CpuWrite(Proc pr, int page, int seed, bool forget)
    {
        var step = Emit("fill", pr);
        step["at"] = Hex(Addr(page));
        step["length"] = PageSize;
        SetPattern(step, seed);
        bool ok = Writable(pr, page);
        var bytes = Pattern(seed);
        bool segv = Faults(() => pr.Process.Write(Addr(page), bytes));
        CheckSegv(step, !ok, segv, $"CPU write of page {page} in {pr.Name}");
        if (ok && !forget)
        {
            pr.Pages[page].Seed = seed;
            pr.Pages[page].MaybeExclusive = false;
        }
    }

    /// <summary>A CPU read of one page, compared with the model. In the final sweep only a failing
    /// read is written to the trace (the reproducer needs that one).</summary>
    private void CpuRead(Proc pr, int page, bool emitAlways)
    {
        bool ok = Readable(pr, page);
        var buf = new byte[PageSize];
        bool segv = Faults(() => pr.Process.Read(Addr(page), buf));
        int seed = ok ? pr.Pages[page].Seed : 0;
        bool bad = ok != !segv || (ok && !buf.AsSpan().SequenceEqual(Pattern(seed)));
        if (!emitAlways && !bad)
            return;
        var step = Emit("verify", pr);
        step["at"] = Hex(Addr(page));
        step["length"] = PageSize;
        SetPattern(step, seed);
        CheckSegv(step, !ok, segv, $"CPU read of page {page} in {pr.Name}");
        if (!ok)
            return;
        pr.Pages[page].MaybeExclusive = false;
        int i = buf.AsSpan().CommonPrefixLength(Pattern(seed));
        if (i < PageSize)
            throw Fail("data", "verify", $"CPU read of page {page} in {pr.Name}: byte 0x{i:x} is 0x{buf[i]:x2}, the model says 0x{Pattern(seed)[i]:x2}");
    }

    /// <summary>Compares n pages a device returned with the model; the first wrong page becomes a verify
    /// step of the buffer.</summary>
    private void CheckBuffer(Proc pr, string op, string buffer, byte[] data, int s, int n)
    {
        for (int i = 0; i < n; i++)
        {
            int seed = pr.Pages[s + i].Seed;
            var got = data.AsSpan(i * PageSize, PageSize);
            int k = got.CommonPrefixLength(Pattern(seed));
            if (k == PageSize)
                continue;
            var step = Emit("verify", pr);
            step["buffer"] = buffer;
            step["offset"] = i * PageSize;
            step["length"] = PageSize;
            SetPattern(step, seed);
            throw Fail("data", op, $"{op} by {pr.Name}: page {s + i} byte 0x{k:x} is 0x{got[k]:x2}, the model says 0x{Pattern(seed)[k]:x2}");
        }
    }

    private static int FirstBad(Proc pr, int s, int n, bool write, out Errno err)
    {
        for (int i = s; i < s + n; i++)
        {
            if (!Readable(pr, i))
            {
                err = Errno.EFAULT;
                return i;
            }
            if (write && !Writable(pr, i))
            {
                err = Errno.EPERM;
                return i;
            }
        }
        err = Errno.None;
        return -1;
    }

    private void CheckCPages(JsonObject step, ulong expected, ulong actual, string where)
    {
        if (expected == actual)
            return;
        Expect(step, "cpages", expected);
        throw Fail("cpages", (string)step["op"]!, $"{where}: cpages expected {expected}, got {actual}");
    }

    private Dmirror Dev(Proc pr, int u) => pr.Dev[u] ?? throw new InvalidOperationException($"{pr.Handle(u)} is not open");

    private byte[] SnapshotAndCheck(Proc pr, int u, int s, int n)
    {
        var prot = new byte[n];
        var step = EmitRange("dmirror.snapshot", pr, u, s, n, "snap");
        var r = Dev(pr, u).Snapshot(Addr(s), (ulong)n, prot);
        CheckErrno(step, Errno.None, r.Error, $"SNAPSHOT unit {u} [{s}, +{n})");
        CheckCPages(step, (ulong)n, r.CPages, $"SNAPSHOT unit {u} [{s}, +{n})");
        for (int i = 0; i < n; i++)
        {
            byte b = prot[i];
            string where = $"SNAPSHOT unit {u} by {pr.Name}: page {s + i} = 0x{b:x2}";
            if (!Readable(pr, s + i))
            {
                if (b != (byte)DmirrorProt.Error)
                    SnapshotFailed(step, prot, i, (byte)DmirrorProt.Error, where + ", expected ERROR (unmapped or PROT_NONE)");
                continue;
            }
            if (b == (byte)DmirrorProt.Error)
            {
                // Without a fault request another owner's device-private PMD reads as an error: the
                // other unit must see its own PMD there.
                var other = new byte[1];
                var os = EmitRange("dmirror.snapshot", pr, 1 - u, s + i, 1, "snap2");
                CheckErrno(os, Errno.None, Dev(pr, 1 - u).Snapshot(Addr(s + i), 1, other).Error, "SNAPSHOT of one page");
                byte want = (byte)DmirrorProt.DevPrivateLocal | (byte)DmirrorProt.Pmd;
                if ((other[0] & 0xF4) != want)
                    SnapshotFailed(os, other, 0, (byte)(want | (other[0] & 0x0B)), where + $" on a readable page, and unit {1 - u} sees 0x{other[0]:x2}, not its own device-private PMD");
                continue;
            }
            // Another device's private pages are never reported; the coherent units are not used.
            if ((b & 0xF0) is not (0x00 or 0x10 or 0x20))
                SnapshotFailed(step, prot, i, (byte)(b & 0x2F), where + ", a kind no page here can have");
            if (b != 0 && (b & 0x03) is not (0x01 or 0x02))
                SnapshotFailed(step, prot, i, (byte)(b | (byte)DmirrorProt.Read), where + ", VALID needs READ or WRITE");
            if (!Writable(pr, s + i) && (b & (byte)DmirrorProt.Write) != 0)
                SnapshotFailed(step, prot, i, (byte)((b & ~(byte)DmirrorProt.Write) | (byte)DmirrorProt.Read), where + ", WRITE in a read-only mapping");
        }
        return prot;
    }

    /// <summary>A snapshot byte broke a rule: the step expects the bytes as they came with that one
    /// byte as the rule wants it, so the replay stops at the same byte.</summary>
    private void SnapshotFailed(JsonObject step, byte[] prot, int index, byte wanted, string message)
    {
        var bytes = new JsonArray();
        for (int i = 0; i <= index; i++)
            bytes.Add(i == index ? wanted : prot[i]);
        Expect(step, "snapshot", bytes);
        throw Fail("snapshot", (string)step["op"]!, message);
    }

    /// <summary>A device READ/WRITE of a page that sits on that unit but is not in that unit's mirror
    /// reaches test_hmm.c's oops path; move such pages back first, as DeviceModelBasedTests does.</summary>
    private void EvictOwnUnmirrored(Proc pr, int u, int s, int n)
    {
        var snap = SnapshotAndCheck(pr, u, s, n);
        bool any = false;
        for (int i = 0; i < n; i++)
        {
            if ((snap[i] & 0xF0) != (byte)DmirrorProt.DevPrivateLocal)
                continue;
            any = true;
            var step = EmitRange("dmirror.migrate_to_sys", pr, u, s + i, 1, null);
            CheckErrno(step, Errno.None, Dev(pr, u).MigrateToSystem(Addr(s + i), 1).Error, $"MIGRATE_TO_SYS unit {u} page {s + i}");
        }
        if (any)
            CheckNotLocal(pr, u, s, n, "MIGRATE_TO_SYS");
    }

    private void CheckNotLocal(Proc pr, int u, int s, int n, string what)
    {
        var snap = SnapshotAndCheck(pr, u, s, n);
        for (int i = 0; i < n; i++)
            if ((snap[i] & 0xF0) == (byte)DmirrorProt.DevPrivateLocal)
                SnapshotFailed((JsonObject)_trace[^1], snap, i, (byte)(snap[i] & 0x0F), $"{what} unit {u} by {pr.Name}: page {s + i} still on the device (0x{snap[i]:x2})");
    }

    private bool DeviceRead(Proc pr, int u, int s, int n)
    {
        bool mirrored = true;
        for (int i = s; i < s + n && mirrored; i++)
            mirrored = pr.Mirrored[u].Contains(i);
        if (!mirrored)
            EvictOwnUnmirrored(pr, u, s, n);
        var buf = new byte[n * PageSize];
        var step = EmitRange("dmirror.read", pr, u, s, n, "rd");
        var r = Dev(pr, u).Read(Addr(s), (ulong)n, buf);
        FirstBad(pr, s, n, write: false, out var expected);
        string where = $"READ unit {u} [{s}, +{n}) by {pr.Name}";
        CheckErrno(step, expected, r.Error, where);
        if (r.Error != Errno.None)
            return false;
        CheckCPages(step, (ulong)n, r.CPages, where);
        if (mirrored && r.Faults != 0)
        {
            Expect(step, "faults", 0);
            throw Fail("faults", "dmirror.read", $"{where}: {r.Faults} device faults on pages the mirror holds");
        }
        for (int i = 0; i < n; i++)
            pr.Pages[s + i].MaybeExclusive = false;   // hmm_range_fault faulted any exclusive entry back
        CheckBuffer(pr, "dmirror.read", "rd", buf, s, n);
        _done = _done with { DeviceReads = _done.DeviceReads + 1 };
        return mirrored;
    }

    private void DeviceWrite(Proc pr, int u, int s, int n, int arg)
    {
        // A failing WRITE leaves an unknowable prefix written: make the first bad page the first page.
        int bad = FirstBad(pr, s, n, write: true, out _);
        if (bad > s)
        {
            if (arg % 2 == 0)
                n = bad - s;
            else
            {
                n -= bad - s;
                s = bad;
            }
        }
        EvictOwnUnmirrored(pr, u, s, n);
        FirstBad(pr, s, n, write: true, out var expected);
        var data = new byte[n * PageSize];
        var seeds = new int[n];
        for (int i = 0; i < n; i++)
        {
            seeds[i] = 1 + (int)(((uint)arg + (uint)i) % int.MaxValue);
            Pattern(seeds[i]).CopyTo(data, i * PageSize);
            var fill = Emit("fill", pr);
            fill["buffer"] = "wr";
            fill["offset"] = i * PageSize;
            fill["length"] = PageSize;
            SetPattern(fill, seeds[i]);
        }
        var step = EmitRange("dmirror.write", pr, u, s, n, "wr");
        var r = Dev(pr, u).Write(Addr(s), (ulong)n, data);
        string where = $"WRITE unit {u} [{s}, +{n}) by {pr.Name}";
        CheckErrno(step, expected, r.Error, where);
        if (r.Error != Errno.None)
            return;
        CheckCPages(step, (ulong)n, r.CPages, where);
        for (int i = 0; i < n; i++)
        {
            pr.Pages[s + i].Seed = seeds[i];
            pr.Pages[s + i].MaybeExclusive = false;
        }
        _done = _done with { DeviceWrites = _done.DeviceWrites + 1 };
    }

    private void MigrateToDevice(Proc pr, int u, int s, int n)
    {
        var buf = new byte[n * PageSize];
        var step = EmitRange("dmirror.migrate_to_dev", pr, u, s, n, "mig");
        var r = Dev(pr, u).MigrateToDevice(Addr(s), (ulong)n, buf);
        foreach (var p in _procs)
            foreach (var set in p.Mirrored)
                set.Clear();
        string where = $"MIGRATE_TO_DEV unit {u} [{s}, +{n}) by {pr.Name}";
        if (FirstBad(pr, s, n, write: false, out _) >= 0)
        {
            CheckErrno(step, Errno.EINVAL, r.Error, where + " (no VMA or no VM_READ)");
            return;
        }
        // ENOENT: some page was not migrated and not mirrored (on a device already, exclusive, ...).
        if (!CompletedWithData(step, r, where, pr, "mig", buf, s, n))
            return;
        var snap = SnapshotAndCheck(pr, u, s, n);
        for (int i = 0; i < n; i++)
        {
            if (pr.Pages[s + i].MaybeExclusive && snap[i] == (byte)DmirrorProt.None)
                continue;
            if ((snap[i] & 0xF0) != (byte)DmirrorProt.DevPrivateLocal)
                SnapshotFailed((JsonObject)_trace[^1], snap, i, (byte)((snap[i] & 0x0F) | (byte)DmirrorProt.DevPrivateLocal), $"{where}: page {s + i} snapshot 0x{snap[i]:x2}, expected DEV_PRIVATE_LOCAL");
        }
        pr.Mirrored[u].UnionWith(Enumerable.Range(s, n));
        _done = _done with { MigratedToDevice = _done.MigratedToDevice + 1 };
    }

    /// <summary>An ioctl that returns the pages' data and may end in ENOENT when a page could not be
    /// handled (the model cannot tell in advance): ENOENT is recorded, any other error fails; on
    /// success every page is compared. True when it succeeded.</summary>
    private bool CompletedWithData(JsonObject step, DmirrorResult r, string where, Proc pr, string buffer, byte[] data, int s, int n)
    {
        if (r.Error is not (Errno.None or Errno.ENOENT))
            CheckErrno(step, Errno.None, r.Error, where);
        Record(step, r.Error);
        if (r.Error != Errno.None)
            return false;
        CheckCPages(step, (ulong)n, r.CPages, where);
        CheckBuffer(pr, (string)step["op"]!, buffer, data, s, n);
        return true;
    }

    private void MigrateToSystem(Proc pr, int u, int s, int n)
    {
        var step = EmitRange("dmirror.migrate_to_sys", pr, u, s, n, null);
        var r = Dev(pr, u).MigrateToSystem(Addr(s), (ulong)n);
        string where = $"MIGRATE_TO_SYS unit {u} [{s}, +{n}) by {pr.Name}";
        bool bad = FirstBad(pr, s, n, write: false, out _) >= 0;
        CheckErrno(step, bad ? Errno.EINVAL : Errno.None, r.Error, where);
        if (bad)
            return;
        if (r.CPages > (ulong)n)
            CheckCPages(step, (ulong)n, r.CPages, where);
        CheckNotLocal(pr, u, s, n, "MIGRATE_TO_SYS");
    }

    private void Exclusive(Proc pr, int u, int s, int n)
    {
        var buf = new byte[n * PageSize];
        var step = EmitRange("dmirror.exclusive", pr, u, s, n, "exc");
        var r = Dev(pr, u).Exclusive(Addr(s), (ulong)n, buf);
        for (int i = s; i < s + n; i++)
            if (pr.Pages.TryGetValue(i, out var pg))
                pg.MaybeExclusive = true;
        string where = $"EXCLUSIVE unit {u} [{s}, +{n}) by {pr.Name}";
        if (FirstBad(pr, s, n, write: true, out var expected) >= 0)
        {
            // make_device_exclusive faults with FOLL_WRITE: GUP fails on the bad page.
            if (r.Error == Errno.None)
                CheckErrno(step, expected, r.Error, where + " over a page it cannot write");
            Record(step, r.Error);
            return;
        }
        // ENOENT: an invalidation (a THP split) dropped an ATOMIC entry before the read-back.
        if (!CompletedWithData(step, r, where, pr, "exc", buf, s, n))
            return;
        var own = EmitRange("dmirror.check_exclusive", pr, u, s, n, null);
        CheckErrno(own, Errno.EPERM, Dev(pr, u).CheckExclusive(Addr(s), (ulong)n).Error, where + ": CHECK_EXCLUSIVE on the same unit");
        var other = EmitRange("dmirror.check_exclusive", pr, 1 - u, s, n, null);
        CheckErrno(other, Errno.None, Dev(pr, 1 - u).CheckExclusive(Addr(s), (ulong)n).Error, where + ": CHECK_EXCLUSIVE on the other unit");
        _done = _done with { Exclusive = _done.Exclusive + 1 };
    }

    private void Mprotect(Proc pr, int s, int n, Prot prot)
    {
        var step = Emit("mprotect", pr);
        step["at"] = Hex(Addr(s));
        step["length"] = n * PageSize;
        step["prot"] = prot == Prot.None ? "None" : prot.ToString().Replace(", ", "|", StringComparison.Ordinal);
        var err = pr.Process.Mprotect(Addr(s), (ulong)n * PageSize, prot);
        // The kernel changes the VMAs up to the first hole, then fails with ENOMEM.
        bool hole = false;
        for (int i = s; i < s + n && !hole; i++)
        {
            if (pr.Pages.TryGetValue(i, out var pg))
                pg.Prot = prot;
            else
                hole = true;
        }
        CheckErrno(step, hole ? Errno.ENOMEM : Errno.None, err, $"mprotect [{s}, +{n}) {prot} by {pr.Name}");
    }

    private void ForkOrExit(Proc pr, int pick)
    {
        if (_procs.Count < 3)
        {
            string name = $"p{++_forks}";
            var step = Emit("fork", pr);
            step["child"] = name;
            var child = new Proc(name, pr.Process.Fork()) { Pages = pr.Pages.ToDictionary(kv => kv.Key, kv => kv.Value.Clone()) };
            _procs.Add(child);
            Open(child);
            _done = _done with { Forks = _done.Forks + 1 };
            return;
        }
        // close() of a dmirror file evicts every page of its device, in every process; then exit.
        var victim = _procs[1 + (pick % (_procs.Count - 1))];
        for (int u = 0; u < Units; u++)
        {
            var close = Emit("dmirror.close", victim, onHandle: true);
            close["handle"] = victim.Handle(u);
            victim.Dev[u]?.Dispose();
            victim.Dev[u] = null;
        }
        Emit("exit", victim);
        _procs.Remove(victim);
        victim.Process.Dispose();
    }

    private void Munmap(Proc pr, int s, int n)
    {
        var step = Emit("munmap", pr);
        step["at"] = Hex(Addr(s));
        step["length"] = n * PageSize;
        CheckErrno(step, Errno.None, pr.Process.Munmap(Addr(s), (ulong)n * PageSize), $"munmap [{s}, +{n}) by {pr.Name}");
        for (int i = s; i < s + n; i++)
            pr.Pages.Remove(i);
    }

    private void DontNeed(Proc pr, int s, int n)
    {
        var step = Emit("madvise", pr);
        step["at"] = Hex(Addr(s));
        step["length"] = n * PageSize;
        step["advice"] = "DontNeed";
        var err = pr.Process.Madvise(Addr(s), (ulong)n * PageSize, Advice.DontNeed);
        bool hole = false;
        for (int i = s; i < s + n; i++)
        {
            if (pr.Pages.TryGetValue(i, out var pg))
            {
                pg.Seed = 0;
                pg.MaybeExclusive = false;
            }
            else
                hole = true;
        }
        CheckErrno(step, hole ? Errno.ENOMEM : Errno.None, err, $"MADV_DONTNEED [{s}, +{n}) by {pr.Name}");
    }
}
