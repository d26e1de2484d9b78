namespace HmmSim.Tests.HmmDevice;

/// <summary>Random interleavings of CPU accesses, dmirror ioctls on the two device-private units
/// and mm system calls (mprotect, fork, exit, munmap, MADV_DONTNEED, mmap) over a few private
/// anonymous mappings, checked byte for byte against a reference model of each address space.</summary>
public class DeviceModelBasedTests
{
    private const ulong PageSize = 4096;
    private const ulong WindowBase = 0x4000_0000;   // 2 MiB aligned, far below mmap_base
    private const int WindowPages = 1024;           // the last 512 pages are one MADV_HUGEPAGE PMD
    private const int ThpFirst = 512;
    private const int Units = 2;                    // units 0 and 1: device-private
    private const int Steps = 150;
    private const Prot Rw = Prot.Read | Prot.Write;
    private const MapFlags PrivAnon = MapFlags.Private | MapFlags.Anonymous;

    private static readonly Prot[] _prots = [Prot.None, Prot.Read, Rw];

    private sealed class RefPage(Prot prot)
    {
        public Prot Prot = prot;
        public byte[]? Data;   // null: never written, reads as zeros
        // EXCLUSIVE may have left a device-exclusive entry that nothing has restored since: such a
        // page is not collected by MIGRATE_TO_DEV (not device-private) and its ATOMIC mirror entry
        // may still satisfy the read-back. fork restores them (copy_nonpresent_pte).
        public bool MaybeExclusive;
        public RefPage Clone() => new(Prot) { Data = (byte[]?)Data?.Clone() };
        public ReadOnlySpan<byte> Bytes => Data ?? new byte[PageSize];
    }

    private sealed class Proc
    {
        public required Process Process;
        public required Dictionary<int, RefPage> Pages;
        public readonly Dmirror[] Dev = new Dmirror[Units];
        // Pages whose mirror entry in Dev[u] is known to be the backing page stored by a
        // successful MIGRATE_TO_DEV, with no operation since that could have invalidated it.
        public readonly HashSet<int>[] Mirrored = [[], []];

        public void Open()
        {
            for (int u = 0; u < Units; u++)
                Dev[u] = Process.OpenDmirror(u);
        }
    }

    private sealed class Run(Random rng, Machine machine)
    {
        public readonly Random Rng = rng;
        public readonly Machine Machine = machine;
        public readonly List<Proc> Procs = [];
        public int Step;
        public readonly List<string> Log = [];
        public int MigratedOk, DevReadOk, DevWriteOk, ExclusiveOk, MigratedBackOk;

        public string Where(Proc pr, string op) => $"step {Step}, pid {pr.Process.Pid}, {op}";
    }

    private static ulong Addr(int page) => WindowBase + (ulong)page * PageSize;

    public static TheoryData<int, DevicePrivateDesign> Cases()
    {
        var data = new TheoryData<int, DevicePrivateDesign>();
        foreach (var design in new[] { DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace })
            foreach (int seed in new[] { 1, 2, 8, 13, 106, 130 })   // 106: PROT_NONE THP; 130: foreign device-private PMD
                data.Add(seed, design);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RandomDeviceAndCpuSequenceMatchesReferenceModel(int seed, DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var run = new Run(new Random(seed), m);
        var root = new Proc { Process = m.CreateProcess(), Pages = [] };
        root.Open();
        run.Procs.Add(root);
        try
        {
            MapInitial(root);
            for (run.Step = 0; run.Step < Steps; run.Step++)
            {
                var pr = run.Procs[run.Rng.Next(run.Procs.Count)];
                try
                {
                    DoStep(run, pr);
                }
                catch (Exception e) when (Environment.GetEnvironmentVariable("HMMSIM_TRACE") is not null)
                {
                    throw new InvalidOperationException(string.Join("\n", run.Log.TakeLast(400)) + "\n" + e.Message, e);
                }
            }
            foreach (var pr in run.Procs)
                for (int i = 0; i < WindowPages; i++)
                    VerifyCpuPage(run, pr, i);
            m.CheckInvariants();
            // The strict data checks above only mean something if the device paths succeeded.
            Assert.True(run.MigratedOk > 0, "no MIGRATE_TO_DEV succeeded");
            Assert.True(run.DevReadOk > 0, "no device READ succeeded");
            Assert.True(run.DevWriteOk > 0, "no device WRITE succeeded");
        }
        finally
        {
            foreach (var pr in run.Procs)
            {
                foreach (var d in pr.Dev)
                    d.Dispose();
                pr.Process.Dispose();
            }
        }
    }

    private static void MapInitial(Proc pr)
    {
        MapFixed(pr, 0, 64);
        MapFixed(pr, 128, 32);
        MapFixed(pr, ThpFirst, WindowPages - ThpFirst);
        Assert.Equal(Errno.None, pr.Process.Madvise(Addr(ThpFirst), (WindowPages - ThpFirst) * PageSize, Advice.HugePage));
    }

    private static void MapFixed(Proc pr, int s, int n)
    {
        Assert.Equal(Errno.None, pr.Process.Mmap(Addr(s), (ulong)n * PageSize, Rw, PrivAnon | MapFlags.Fixed, out var a));
        Assert.Equal(Addr(s), a);
        for (int i = s; i < s + n; i++)
            pr.Pages[i] = new RefPage(Rw);
    }

    private static void DoStep(Run run, Proc pr)
    {
        var rng = run.Rng;
        int op = rng.Next(100);
        int u = rng.Next(Units);
        bool keepMirrors = false;
        run.Log.Add($"step {run.Step} pid {pr.Process.Pid} op {op} unit {u}");
        if (op < 10)
            CpuWrite(run, pr);
        else if (op < 18)
            VerifyCpuPage(run, pr, PickPage(run, pr));
        else if (op < 30)
            keepMirrors = DeviceRead(run, pr, u);
        else if (op < 40)
            DeviceWrite(run, pr, u);
        else if (op < 54)
        {
            MigrateToDevice(run, pr, u);
            keepMirrors = true;   // MigrateToDevice set the mirrors itself
        }
        else if (op < 60)
            MigrateToSystem(run, pr, u);
        else if (op < 64)
            Exclusive(run, pr, u);
        else if (op < 72)
        {
            var (s, n) = PickRange(run, pr);
            SnapshotAndCheck(run, pr, u, s, n);
            keepMirrors = true;
        }
        else if (op < 77)
            Mprotect(run, pr);
        else if (op < 82)
            ForkOrExit(run, pr);
        else if (op < 86)
            Munmap(run, pr);
        else if (op < 91)
            DontNeed(run, pr);
        else if (op < 94)
            Mmap(run, pr);
        else
            VerifyCpuPage(run, pr, PickPage(run, pr));
        if (!keepMirrors)
            ForgetAllMirrors(run);
    }

    /// <summary>Any operation may send invalidations (in this mm or, through rmap, in a relative's)
    /// that empty a mirror: forget what we knew.</summary>
    private static void ForgetAllMirrors(Run run)
    {
        foreach (var p in run.Procs)
            foreach (var set in p.Mirrored)
                set.Clear();
    }

    private static int PickPage(Run run, Proc pr)
    {
        int page = pr.Pages.Count > 0 && run.Rng.Next(4) != 0 ? pr.Pages.Keys.ElementAt(run.Rng.Next(pr.Pages.Count)) : run.Rng.Next(WindowPages);
        run.Log.Add($"  page {page}");
        return page;
    }

    private static (int Start, int Count) PickRange(Run run, Proc pr)
    {
        if (run.Rng.Next(6) == 0)
        {
            run.Log.Add("  range: the whole PMD");
            return (ThpFirst, WindowPages - ThpFirst);
        }
        int s = PickPage(run, pr);
        int n = 1 + run.Rng.Next(run.Rng.Next(3) == 0 ? 80 : 16);
        n = Math.Min(n, WindowPages - s);
        run.Log.Add($"  range [{s}, +{n})");
        return (s, n);
    }

    private static bool Readable(Proc pr, int page) => pr.Pages.TryGetValue(page, out var pg) && (pg.Prot & Prot.Read) != 0;
    private static bool Writable(Proc pr, int page) => pr.Pages.TryGetValue(page, out var pg) && (pg.Prot & Prot.Write) != 0;

    private static void CpuWrite(Run run, Proc pr)
    {
        var rng = run.Rng;
        int page = PickPage(run, pr);
        bool ok = Writable(pr, page);
        if (rng.Next(2) == 0)
        {
            int off = rng.Next((int)PageSize / 4) * 4;
            int value = rng.Next();
            ulong a = Addr(page) + (ulong)off;
            if (!ok)
            {
                Assert.Throws<SegmentationFaultException>(() => pr.Process.WriteInt32(a, value));
                return;
            }
            pr.Process.WriteInt32(a, value);
            var pg = pr.Pages[page];
            pg.MaybeExclusive = false;
            pg.Data ??= new byte[PageSize];
            BitConverter.TryWriteBytes(pg.Data.AsSpan(off), value);
        }
        else
        {
            int off = rng.Next((int)PageSize - 64);
            var data = new byte[1 + rng.Next(64)];
            rng.NextBytes(data);
            ulong a = Addr(page) + (ulong)off;
            if (!ok)
            {
                Assert.Throws<SegmentationFaultException>(() => pr.Process.Write(a, data));
                return;
            }
            pr.Process.Write(a, data);
            var pg = pr.Pages[page];
            pg.MaybeExclusive = false;
            pg.Data ??= new byte[PageSize];
            data.CopyTo(pg.Data, off);
        }
    }

    private static void VerifyCpuPage(Run run, Proc pr, int page)
    {
        if (!Readable(pr, page))
        {
            run.Log.Add($"  model {pr.Pages.GetValueOrDefault(page)?.Prot} kernel {pr.Process.Mm.Vmas.Lookup(Addr(page))}");
            var ex = Assert.Throws<SegmentationFaultException>(() => pr.Process.ReadInt32(Addr(page)));
            Assert.Equal(Addr(page), ex.Address);
            return;
        }
        var buf = new byte[PageSize];
        pr.Process.Read(Addr(page), buf);
        pr.Pages[page].MaybeExclusive = false;
        Assert.True(pr.Pages[page].Bytes.SequenceEqual(buf), $"{run.Where(pr, "CPU read")}: page {page} differs from the reference");
        int off = run.Rng.Next((int)PageSize / 4) * 4;
        Assert.Equal(BitConverter.ToInt32(pr.Pages[page].Bytes[off..]), pr.Process.ReadInt32(Addr(page) + (ulong)off));
    }

    /// <summary>The SNAPSHOT ioctl through unit <paramref name="u"/>, with the checks that hold for any
    /// page; returns the bytes.</summary>
    private static byte[] SnapshotAndCheck(Run run, Proc pr, int u, int s, int n)
    {
        var prot = new byte[n];
        var r = pr.Dev[u].Snapshot(Addr(s), (ulong)n, prot);
        Assert.Equal(Errno.None, r.Error);
        Assert.Equal((ulong)n, r.CPages);
        for (int i = 0; i < n; i++)
        {
            byte b = prot[i];
            string where = $"{run.Where(pr, $"SNAPSHOT unit {u}")}: page {s + i} = 0x{b:x2}";
            if (!Readable(pr, s + i))
            {
                Assert.True(b == (byte)DmirrorProt.Error, where + ", expected ERROR (unmapped or PROT_NONE)");
                continue;
            }
            if (b == (byte)DmirrorProt.Error)
            {
                // hmm_range_fault without a fault request reports another owner's device-private
                // PMD as HMM_PFN_ERROR: the other unit must see its own PMD there.
                var other = new byte[1];
                Assert.Equal(Errno.None, pr.Dev[1 - u].Snapshot(Addr(s + i), 1, other).Error);
                Assert.True((other[0] & 0xF4) == ((byte)DmirrorProt.DevPrivateLocal | (byte)DmirrorProt.Pmd),
                    where + $" on a readable page, and unit {1 - u} sees 0x{other[0]:x2}, not its own device-private PMD");
                continue;
            }
            // Another device's private pages are never reported (not VALID); coherent units unused.
            Assert.True((b & 0xF0) is 0x00 or 0x10 or 0x20, where);
            if (b != 0)
                Assert.True((b & 0x03) is 0x01 or 0x02, where + ", VALID needs READ or WRITE");
            if (!Writable(pr, s + i))
                Assert.True((b & (byte)DmirrorProt.Write) == 0, where + ", WRITE in a read-only mapping");
        }
        return prot;
    }

    /// <summary>hmm_range_fault walks pages in order: the first page with no VMA or without VM_READ fails
    /// the fault with EFAULT; for a write fault a VMA without VM_WRITE gives EPERM.</summary>
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

    /// <summary>A device READ/WRITE through unit u of a page that sits on unit u but is not in unit u's
    /// mirror reaches test_hmm.c's oops path (KernelOopsPathTests). Move such pages back first
    /// with MIGRATE_TO_SYS; false if one would not move.</summary>
    private static bool EvictOwnUnmirrored(Run run, Proc pr, int u, int s, int n)
    {
        var snap = SnapshotAndCheck(run, pr, u, s, n);
        bool any = false;
        for (int i = 0; i < n; i++)
        {
            if ((snap[i] & 0xF0) != (byte)DmirrorProt.DevPrivateLocal)
                continue;
            any = true;
            var r = pr.Dev[u].MigrateToSystem(Addr(s + i), 1);
            Assert.Equal(Errno.None, r.Error);
        }
        if (!any)
            return true;
        snap = SnapshotAndCheck(run, pr, u, s, n);
        for (int i = 0; i < n; i++)
            Assert.True((snap[i] & 0xF0) != (byte)DmirrorProt.DevPrivateLocal,
                $"{run.Where(pr, $"MIGRATE_TO_SYS unit {u}")}: page {s + i} still on the device (0x{snap[i]:x2})");
        return true;
    }

    private static bool DeviceRead(Run run, Proc pr, int u)
    {
        var (s, n) = PickRange(run, pr);
        bool mirrored = Enumerable.Range(s, n).All(pr.Mirrored[u].Contains);
        if (!mirrored && !EvictOwnUnmirrored(run, pr, u, s, n))
            return false;
        var buf = new byte[n * (int)PageSize];
        var r = pr.Dev[u].Read(Addr(s), (ulong)n, buf);
        FirstBad(pr, s, n, write: false, out var expected);
        Assert.True(expected == r.Error, $"{run.Where(pr, $"READ unit {u} [{s}, +{n})")}: expected {expected}, got {r.Error}");
        if (r.Error != Errno.None)
            return false;
        Assert.Equal((ulong)n, r.CPages);
        if (mirrored)
            Assert.Equal(0UL, r.Faults);
        for (int i = 0; i < n; i++)
            pr.Pages[s + i].MaybeExclusive = false;   // hmm_range_fault faulted any exclusive entry back
        for (int i = 0; i < n; i++)
            Assert.True(pr.Pages[s + i].Bytes.SequenceEqual(buf.AsSpan(i * (int)PageSize, (int)PageSize)),
                $"{run.Where(pr, $"READ unit {u} [{s}, +{n})")}: page {s + i} differs from the reference");
        run.DevReadOk++;
        return mirrored;
    }

    private static void DeviceWrite(Run run, Proc pr, int u)
    {
        var (s, n) = PickRange(run, pr);
        // A failing WRITE leaves an unknowable prefix written: make the first bad page the first page.
        int bad = FirstBad(pr, s, n, write: true, out _);
        if (bad > s)
        {
            if (run.Rng.Next(2) == 0)
                n = bad - s;
            else
            {
                n -= bad - s;
                s = bad;
            }
        }
        if (!EvictOwnUnmirrored(run, pr, u, s, n))
            return;
        FirstBad(pr, s, n, write: true, out var expected);
        var data = new byte[n * (int)PageSize];
        run.Rng.NextBytes(data);
        var r = pr.Dev[u].Write(Addr(s), (ulong)n, data);
        run.Log.Add($"  WRITE [{s}, +{n}) -> {r.Error}");
        Assert.True(expected == r.Error, $"{run.Where(pr, $"WRITE unit {u} [{s}, +{n})")}: expected {expected}, got {r.Error}");
        if (r.Error != Errno.None)
            return;
        Assert.Equal((ulong)n, r.CPages);
        for (int i = 0; i < n; i++)
        {
            pr.Pages[s + i].Data = data.AsSpan(i * (int)PageSize, (int)PageSize).ToArray();
            pr.Pages[s + i].MaybeExclusive = false;
        }
        run.DevWriteOk++;
    }

    private static void MigrateToDevice(Run run, Proc pr, int u)
    {
        var (s, n) = PickRange(run, pr);
        var buf = new byte[n * (int)PageSize];
        var r = pr.Dev[u].MigrateToDevice(Addr(s), (ulong)n, buf);
        ForgetAllMirrors(run);
        string where = run.Where(pr, $"MIGRATE_TO_DEV unit {u} [{s}, +{n})");
        if (FirstBad(pr, s, n, write: false, out _) >= 0)
        {
            Assert.True(r.Error == Errno.EINVAL, $"{where}: expected EINVAL (no VMA or no VM_READ), got {r.Error}");
            return;
        }
        // ENOENT: some page was not migrated and not mirrored (it was on a device already, for one).
        Assert.True(r.Error is Errno.None or Errno.ENOENT, $"{where}: got {r.Error}");
        if (r.Error != Errno.None)
            return;
        Assert.Equal((ulong)n, r.CPages);
        for (int i = 0; i < n; i++)
            Assert.True(pr.Pages[s + i].Bytes.SequenceEqual(buf.AsSpan(i * (int)PageSize, (int)PageSize)),
                $"{where}: page {s + i} differs from the reference");
        var snap = SnapshotAndCheck(run, pr, u, s, n);
        for (int i = 0; i < n; i++)
        {
            if (pr.Pages[s + i].MaybeExclusive && snap[i] == (byte)DmirrorProt.None)
                continue;
            Assert.True((snap[i] & 0xF0) == (byte)DmirrorProt.DevPrivateLocal,
                $"{where}: page {s + i} snapshot 0x{snap[i]:x2}, expected DEV_PRIVATE_LOCAL");
        }
        pr.Mirrored[u].UnionWith(Enumerable.Range(s, n));
        run.MigratedOk++;
    }

    private static void MigrateToSystem(Run run, Proc pr, int u)
    {
        var (s, n) = PickRange(run, pr);
        var r = pr.Dev[u].MigrateToSystem(Addr(s), (ulong)n);
        string where = run.Where(pr, $"MIGRATE_TO_SYS unit {u} [{s}, +{n})");
        if (FirstBad(pr, s, n, write: false, out _) >= 0)
        {
            Assert.True(r.Error == Errno.EINVAL, $"{where}: expected EINVAL (no VMA or no VM_READ), got {r.Error}");
            return;
        }
        Assert.True(r.Error == Errno.None, $"{where}: got {r.Error}");
        Assert.True(r.CPages <= (ulong)n, $"{where}: cpages {r.CPages}");
        var snap = SnapshotAndCheck(run, pr, u, s, n);
        for (int i = 0; i < n; i++)
            Assert.True((snap[i] & 0xF0) != (byte)DmirrorProt.DevPrivateLocal,
                $"{where}: page {s + i} still on unit {u} (0x{snap[i]:x2})");
        run.MigratedBackOk++;
    }

    private static void Exclusive(Run run, Proc pr, int u)
    {
        var (s, n) = PickRange(run, pr);
        var buf = new byte[n * (int)PageSize];
        var r = pr.Dev[u].Exclusive(Addr(s), (ulong)n, buf);
        for (int i = s; i < s + n; i++)
            if (pr.Pages.TryGetValue(i, out var pg))
                pg.MaybeExclusive = true;
        string where = run.Where(pr, $"EXCLUSIVE unit {u} [{s}, +{n})");
        if (FirstBad(pr, s, n, write: true, out _) >= 0)
        {
            // make_device_exclusive faults with FOLL_WRITE: GUP fails on the bad page.
            Assert.True(r.Error != Errno.None, $"{where}: succeeded over a page it cannot write");
            return;
        }
        // ENOENT: an invalidation (a THP split by FOLL_SPLIT_PMD) dropped an ATOMIC entry before the read-back.
        Assert.True(r.Error is Errno.None or Errno.ENOENT, $"{where}: got {r.Error}");
        if (r.Error != Errno.None)
            return;
        Assert.Equal((ulong)n, r.CPages);
        for (int i = 0; i < n; i++)
            Assert.True(pr.Pages[s + i].Bytes.SequenceEqual(buf.AsSpan(i * (int)PageSize, (int)PageSize)),
                $"{where}: page {s + i} differs from the reference");
        Assert.Equal(Errno.EPERM, pr.Dev[u].CheckExclusive(Addr(s), (ulong)n).Error);
        Assert.Equal(Errno.None, pr.Dev[1 - u].CheckExclusive(Addr(s), (ulong)n).Error);
        run.ExclusiveOk++;
    }

    private static void Mprotect(Run run, Proc pr)
    {
        var (s, n) = PickRange(run, pr);
        var prot = _prots[run.Rng.Next(_prots.Length)];
        var err = pr.Process.Mprotect(Addr(s), (ulong)n * PageSize, prot);
        run.Log.Add($"  mprotect {prot} -> {err}");
        // The kernel changes the VMAs up to the first hole, then fails with ENOMEM.
        bool hole = false;
        for (int i = s; i < s + n; i++)
        {
            if (!pr.Pages.TryGetValue(i, out var pg))
            {
                hole = true;
                break;
            }
            pg.Prot = prot;
        }
        Assert.Equal(hole ? Errno.ENOMEM : Errno.None, err);
    }

    private static void ForkOrExit(Run run, Proc pr)
    {
        if (run.Procs.Count < 3)
        {
            var child = new Proc
            {
                Process = pr.Process.Fork(),
                Pages = pr.Pages.ToDictionary(kv => kv.Key, kv => kv.Value.Clone()),
            };
            child.Open();
            run.Procs.Add(child);
            return;
        }
        // close() of a dmirror file evicts every page of its device, in every process; then exit.
        var victim = run.Procs[1 + run.Rng.Next(run.Procs.Count - 1)];
        foreach (var d in victim.Dev)
            d.Dispose();
        victim.Process.Dispose();
        run.Procs.Remove(victim);
    }

    private static void Munmap(Run run, Proc pr)
    {
        var (s, n) = PickRange(run, pr);
        Assert.Equal(Errno.None, pr.Process.Munmap(Addr(s), (ulong)n * PageSize));
        for (int i = s; i < s + n; i++)
            pr.Pages.Remove(i);
    }

    private static void DontNeed(Run run, Proc pr)
    {
        var (s, n) = PickRange(run, pr);
        var err = pr.Process.Madvise(Addr(s), (ulong)n * PageSize, Advice.DontNeed);
        bool hole = false;
        for (int i = s; i < s + n; i++)
        {
            if (pr.Pages.TryGetValue(i, out var pg))
            {
                pg.Data = null;
                pg.MaybeExclusive = false;
            }
            else
                hole = true;
        }
        Assert.Equal(hole ? Errno.ENOMEM : Errno.None, err);
    }

    private static void Mmap(Run run, Proc pr)
    {
        if (run.Rng.Next(3) == 0)
        {
            MapFixed(pr, ThpFirst, WindowPages - ThpFirst);
            Assert.Equal(Errno.None, pr.Process.Madvise(Addr(ThpFirst), (WindowPages - ThpFirst) * PageSize, Advice.HugePage));
            return;
        }
        var (s, n) = PickRange(run, pr);
        MapFixed(pr, s, n);
    }
}
