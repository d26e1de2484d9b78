using System.Diagnostics;
using HmmSim.Kernel;

namespace HmmSim.Cli.Workloads;

/// <summary>The mm-core workloads behind `hmmsim bench mm` and the BenchmarkDotNet suite, so both
/// measure the same code. Machines are built with the invariant checker off: it is O(mapped memory)
/// per operation and would dominate any timing.</summary>
public static class MmWorkloads
{
    public const ulong Mib = 1UL << 20;
    public const ulong Gib = 1UL << 30;

    /// <summary>The default machine without the invariant checker or a hugetlb reservation.</summary>
    public static MachineConfig NewConfig() => new() { CheckInvariants = false, HugetlbPages = 0 };

    public static Machine NewMachine() => new(NewConfig());

    /// <summary>Maps <paramref name="bytes"/> of private anonymous memory (MADV_HUGEPAGE if <paramref name="thp"/>)
    /// and writes one int per page: one write fault per 4 KiB page, or per 2 MiB THP.</summary>
    public static ulong PopulateAnon(Process p, ulong bytes, bool thp)
    {
        var err = p.Mmap(0, bytes, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong addr);
        if (err != Errno.None)
            throw new ErrnoException(err, "mmap for the workload failed");
        if (thp)
            p.Madvise(addr, bytes, Advice.HugePage);
        for (ulong off = 0; off < bytes; off += Arch.PageSize)
            p.WriteInt32(addr + off, (int)(off >> Arch.PageShift));
        return addr;
    }

    /// <summary>Reads the pagemap entry of every page: a full page-table walk of the range.</summary>
    public static ulong WalkPagemap(Process p, ulong addr, ulong bytes)
    {
        ulong present = 0;
        for (ulong off = 0; off < bytes; off += Arch.PageSize)
            present += p.PagemapEntry(addr + off) >> 63;
        return present;
    }

    public sealed record Figure(string Name, double Value, string Unit);

    /// <summary>The mm-core figures of issue 2, measured once with a stopwatch.</summary>
    public static List<Figure> Measure(ulong bytes = Gib)
    {
        var figures = new List<Figure>();
        ulong pages = bytes / Arch.PageSize;
        using (var m = NewMachine())
        {
            var p = m.CreateProcess();
            // Warm the JIT and the page-data pool on a first region, then measure a second one.
            PopulateAnon(p, 64 * Mib, thp: false);
            long memmapBefore = m.VmStat["struct_page_bytes_model"];
            long tablesBefore = m.VmStat["nr_page_table_pages"];
            long allocBefore = GC.GetAllocatedBytesForCurrentThread();
            var sw = Stopwatch.StartNew();
            ulong addr = PopulateAnon(p, bytes, thp: false);
            sw.Stop();
            long allocated = GC.GetAllocatedBytesForCurrentThread() - allocBefore;
            figures.Add(new("anon write faults, 4 KiB", pages / sw.Elapsed.TotalSeconds, "faults/s"));
            figures.Add(new("managed allocation per 4 KiB fault (page data chunks included)", (double)allocated / pages, "bytes"));
            // What mapping these pages added: their struct pages and the page tables that map them.
            long memmap = m.VmStat["struct_page_bytes_model"] - memmapBefore;
            long tables = (m.VmStat["nr_page_table_pages"] - tablesBefore) * (long)Arch.PageSize;
            figures.Add(new("model metadata per mapped 4 KiB page (memmap + page tables)", (double)(memmap + tables) / pages, "bytes"));
            figures.Add(new("kernel struct page per 4 KiB page", 64, "bytes"));
            sw.Restart();
            ulong present = WalkPagemap(p, addr, bytes);
            sw.Stop();
            if (present != pages)
                throw new KernelBugException($"walk found {present} present pages of {pages}");
            figures.Add(new("page-table walk (pagemap) over 4 KiB mappings", pages / sw.Elapsed.TotalSeconds, "pages/s"));
            sw.Restart();
            var child = p.Fork();
            sw.Stop();
            figures.Add(new($"fork of a {bytes / Mib} MiB populated mm", sw.Elapsed.TotalMilliseconds, "ms"));
            child.Dispose();
            p.Dispose();
        }
        using (var m = NewMachine())
        {
            var p = m.CreateProcess();
            var sw = Stopwatch.StartNew();
            var err = p.Mmap(0, bytes, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong addr);
            if (err != Errno.None)
                throw new ErrnoException(err);
            p.Madvise(addr, bytes, Advice.HugePage);
            for (ulong off = 0; off < bytes; off += Arch.PmdSize)
                p.WriteInt32(addr + off, 1);
            sw.Stop();
            long thps = m.VmStat["thp_fault_alloc"];
            figures.Add(new("anon write faults, THP", thps / sw.Elapsed.TotalSeconds, "faults/s"));
            figures.Add(new("THP write fault throughput", thps * 2.0 / sw.Elapsed.TotalSeconds / 1024, "GiB/s mapped"));
            p.Dispose();
        }
        return figures;
    }
}
