using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

/// <summary>Random syscall sequences on private anonymous memory checked byte for byte against a
/// reference model: a map from page number to (prot, contents) per process.</summary>
public class ModelBasedTests
{
    private const ulong WindowBase = 0x4000_0000;   // 2 MiB aligned, far below mmap_base
    private const int WindowPages = 1024;           // 4 MiB: room for two THPs

    private sealed class RefPage(Prot prot)
    {
        public Prot Prot = prot;
        public byte[]? Data;   // null: never written, reads as zeros
        public RefPage Clone() => new(Prot) { Data = (byte[]?)Data?.Clone() };
    }

    private sealed class Proc(Process process, Dictionary<int, RefPage> pages)
    {
        public readonly Process Process = process;
        public readonly Dictionary<int, RefPage> Pages = pages;
    }

    private static readonly Prot[] _prots = [Prot.None, Prot.Read, Prot.Read | Prot.Write];

    private static ulong Addr(int page) => WindowBase + (ulong)page * PageSize;

    public static TheoryData<int> Seeds => [1, 2, 3, 5, 8, 13, 21, 34];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void RandomSyscallSequenceMatchesReferenceModel(int seed)
    {
        var rng = new Random(seed);
        using var m = new Machine();
        var procs = new List<Proc> { new(m.CreateProcess(), []) };
        try
        {
            for (int step = 0; step < 200; step++)
            {
                var pr = procs[rng.Next(procs.Count)];
                int op = rng.Next(100);
                if (op < 12)
                    DoMmap(rng, pr);
                else if (op < 20)
                    DoMunmap(rng, pr);
                else if (op < 30)
                    DoMprotect(rng, pr);
                else if (op < 38)
                    DoMremap(rng, pr);
                else if (op < 44)
                    DoDontNeed(rng, pr);
                else if (op < 47)
                {
                    var expected = AnyHole(pr, 0, WindowPages) ? Errno.ENOMEM : Errno.None;
                    Assert.Equal(expected, pr.Process.Madvise(WindowBase, WindowPages * PageSize, Advice.HugePage));
                }
                else if (op < 51)
                {
                    if (procs.Count < 4)
                        procs.Add(new Proc(pr.Process.Fork(), pr.Pages.ToDictionary(kv => kv.Key, kv => kv.Value.Clone())));
                    else
                    {
                        var victim = procs[1 + rng.Next(procs.Count - 1)];
                        victim.Process.Dispose();
                        procs.Remove(victim);
                    }
                }
                else if (op < 75)
                    DoWrite(rng, pr);
                else
                    DoRead(rng, pr);
            }
            foreach (var pr in procs)
                VerifyAll(pr);
            m.CheckInvariants();
        }
        finally
        {
            foreach (var pr in procs)
                pr.Process.Dispose();
        }
    }

    private static bool AnyHole(Proc pr, int start, int end)
    {
        for (int i = start; i < end; i++)
            if (!pr.Pages.ContainsKey(i))
                return true;
        return false;
    }

    private static (int Start, int Count) RandomRange(Random rng)
    {
        int n = 1 + rng.Next(rng.Next(4) == 0 ? 600 : 24);
        int s = rng.Next(WindowPages - Math.Min(n, WindowPages - 1));
        return (s, Math.Min(n, WindowPages - s));
    }

    private static void DoMmap(Random rng, Proc pr)
    {
        var (s, n) = RandomRange(rng);
        var prot = _prots[rng.Next(_prots.Length)];
        var flags = PrivAnon | (rng.Next(4) == 0 ? MapFlags.Populate : 0);
        bool noReplace = rng.Next(4) == 0;
        flags |= noReplace ? MapFlags.FixedNoReplace : MapFlags.Fixed;
        var err = pr.Process.Mmap(Addr(s), (ulong)n * PageSize, prot, flags, out var a);
        if (noReplace && Enumerable.Range(s, n).Any(pr.Pages.ContainsKey))
        {
            Assert.Equal(Errno.EEXIST, err);
            return;
        }
        Assert.Equal(Errno.None, err);
        Assert.Equal(Addr(s), a);
        for (int i = s; i < s + n; i++)
            pr.Pages[i] = new RefPage(prot);
    }

    private static void DoMunmap(Random rng, Proc pr)
    {
        var (s, n) = RandomRange(rng);
        Assert.Equal(Errno.None, pr.Process.Munmap(Addr(s), (ulong)n * PageSize));
        for (int i = s; i < s + n; i++)
            pr.Pages.Remove(i);
    }

    private static void DoMprotect(Random rng, Proc pr)
    {
        var (s, n) = RandomRange(rng);
        var prot = _prots[rng.Next(_prots.Length)];
        var err = pr.Process.Mprotect(Addr(s), (ulong)n * PageSize, prot);
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

    private static void DoDontNeed(Random rng, Proc pr)
    {
        var (s, n) = RandomRange(rng);
        var err = pr.Process.Madvise(Addr(s), (ulong)n * PageSize, Advice.DontNeed);
        bool hole = false;
        for (int i = s; i < s + n; i++)
        {
            if (pr.Pages.TryGetValue(i, out var pg))
                pg.Data = null;
            else
                hole = true;
        }
        Assert.Equal(hole ? Errno.ENOMEM : Errno.None, err);
    }

    private static void DoMremap(Random rng, Proc pr)
    {
        if (pr.Pages.Count == 0)
            return;
        // Choose a range inside one VMA (VMA boundaries depend on merging, which the reference does not model).
        int any = pr.Pages.Keys.ElementAt(rng.Next(pr.Pages.Count));
        var vma = pr.Process.Mm.Vmas.Lookup(Addr(any))!;
        int vs = (int)((vma.Start - WindowBase) / PageSize), ve = (int)((vma.End - WindowBase) / PageSize);
        int s = vs + rng.Next(ve - vs);
        int n = 1 + rng.Next(Math.Min(ve - s, 32));
        bool dontUnmap = rng.Next(3) == 0;
        int newN = dontUnmap ? n : 1 + rng.Next(32);
        // A target in the window that does not overlap the old range.
        int t = rng.Next(WindowPages - newN);
        if (t < s + n && t + newN > s)
            return;
        var flags = MremapFlags.MayMove | MremapFlags.Fixed | (dontUnmap ? MremapFlags.DontUnmap : 0);
        Assert.Equal(Errno.None, pr.Process.Mremap(Addr(s), (ulong)n * PageSize, (ulong)newN * PageSize, flags, Addr(t), out var r));
        Assert.Equal(Addr(t), r);
        var moved = new RefPage[newN];
        for (int i = 0; i < newN; i++)
            moved[i] = i < n ? pr.Pages[s + i] : new RefPage(pr.Pages[s].Prot);
        for (int i = t; i < t + newN; i++)
            pr.Pages.Remove(i);
        for (int i = s; i < s + n; i++)
        {
            if (dontUnmap)
                pr.Pages[i] = new RefPage(pr.Pages[i].Prot);
            else
                pr.Pages.Remove(i);
        }
        for (int i = 0; i < newN; i++)
            pr.Pages[t + i] = moved[i];
    }

    private static void DoWrite(Random rng, Proc pr)
    {
        int page = rng.Next(WindowPages);
        int off = rng.Next((int)PageSize - 64);
        var data = new byte[1 + rng.Next(64)];
        rng.NextBytes(data);
        bool ok = pr.Pages.TryGetValue(page, out var pg) && (pg.Prot & Prot.Write) != 0;
        if (!ok)
        {
            Assert.Throws<SegmentationFaultException>(() => pr.Process.Write(Addr(page) + (ulong)off, data));
            return;
        }
        pr.Process.Write(Addr(page) + (ulong)off, data);
        pg!.Data ??= new byte[PageSize];
        data.CopyTo(pg.Data, off);
    }

    private static void DoRead(Random rng, Proc pr)
    {
        int page = rng.Next(WindowPages);
        if (rng.Next(3) == 0 && pr.Pages.Count > 0)
            page = pr.Pages.Keys.ElementAt(rng.Next(pr.Pages.Count));
        VerifyPage(pr, page);
    }

    private static void VerifyPage(Proc pr, int page)
    {
        var buf = new byte[PageSize];
        if (!pr.Pages.TryGetValue(page, out var pg) || pg.Prot == Prot.None)
        {
            Assert.Throws<SegmentationFaultException>(() => pr.Process.Read(Addr(page), buf));
            return;
        }
        pr.Process.Read(Addr(page), buf);
        var expected = pg.Data ?? new byte[PageSize];
        Assert.True(expected.AsSpan().SequenceEqual(buf), $"page {page} of pid {pr.Process.Pid} differs from the reference");
    }

    private static void VerifyAll(Proc pr)
    {
        for (int i = 0; i < WindowPages; i++)
            VerifyPage(pr, i);
    }
}
