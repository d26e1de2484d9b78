namespace HmmSim.Tests.Mm;

internal static class MmTestHelpers
{
    public const ulong PageSize = 4096;
    public const ulong PmdSize = 2UL << 20;
    public const Prot Rw = Prot.Read | Prot.Write;
    public const MapFlags PrivAnon = MapFlags.Private | MapFlags.Anonymous;
    public const MapFlags SharedAnon = MapFlags.Shared | MapFlags.Anonymous;

    public static ulong Map(Process p, ulong len, Prot prot = Rw, MapFlags flags = PrivAnon)
    {
        Assert.Equal(Errno.None, p.Mmap(0, len, prot, flags, out var a));
        return a;
    }

    /// <summary>A MADV_HUGEPAGE 2 MiB-aligned region of <paramref name="hugePages"/> PMDs inside a larger mapping.</summary>
    public static ulong MapThp(Process p, int hugePages = 1)
    {
        ulong len = (ulong)hugePages * PmdSize;
        ulong a = Map(p, len + PmdSize);
        ulong h = (a + PmdSize - 1) & ~(PmdSize - 1);
        Assert.Equal(Errno.None, p.Madvise(h, len, Advice.HugePage));
        return h;
    }

    public static ulong Pfn(ulong entry) => entry & ((1UL << 55) - 1);
    public static bool Present(ulong entry) => (entry & (1UL << 63)) != 0;
    public static bool Exclusive(ulong entry) => (entry & (1UL << 56)) != 0;
    public static bool FileOrShared(ulong entry) => (entry & (1UL << 61)) != 0;
}
