namespace HmmSim.Kernel;

/// <summary>A kernel configuration's inputs to include/linux/page-flags-layout.h.</summary>
/// <param name="Name">A label ("x86-64 4-level, NODES_SHIFT 10").</param>
/// <param name="MaxPhysmemBits">MAX_PHYSMEM_BITS.</param>
/// <param name="SectionSizeBits">SECTION_SIZE_BITS.</param>
/// <param name="NodesShift">NODES_SHIFT (CONFIG_NODES_SHIFT).</param>
/// <param name="MaxNrZones">MAX_NR_ZONES before any proposal (ZONE_DEVICE included).</param>
/// <param name="NrPageflags">NR_PAGEFLAGS (__NR_PAGEFLAGS of enum pageflags for the config).</param>
/// <param name="NrCpusBits">NR_CPUS_BITS (order_base_2(NR_CPUS)).</param>
/// <param name="KasanTagWidth">8 with KASAN_SW_TAGS, 4 with KASAN_HW_TAGS, else 0.</param>
/// <param name="SparsememClassic">CONFIG_SPARSEMEM_CLASSIC (sections in page->flags); false for SPARSEMEM_VMEMMAP.</param>
/// <param name="NumaBalancing">CONFIG_NUMA_BALANCING (LAST_CPUPID wanted).</param>
/// <param name="LruGen">CONFIG_LRU_GEN (LRU_GEN_WIDTH 3, __LRU_REFS_WIDTH 2).</param>
internal sealed record PageFlagsConfig(string Name, int MaxPhysmemBits, int SectionSizeBits, int NodesShift, int MaxNrZones,
    int NrPageflags, int NrCpusBits, int KasanTagWidth, bool SparsememClassic = false, bool NumaBalancing = true, bool LruGen = true);

/// <summary>The page->flags layout include/linux/page-flags-layout.h computes for a configuration:
/// the field widths packed above the NR_PAGEFLAGS flag bits, and what does not fit.</summary>
internal readonly record struct PageFlagsLayout(
    int ZonesWidth, int SectionsWidth, int NodesWidth, int LastCpupidShift, int LastCpupidWidth,
    int KasanTagWidth, int LruGenWidth, int LruRefsWidth, int NrPageflags, bool Fits)
{
    private const int BitsPerLong = 64;

    /// <summary>NODE_NOT_IN_PAGE_FLAGS: the node moved out to section_to_node_table.</summary>
    public bool NodeNotInPageFlags(int nodesShift) => nodesShift != 0 && NodesWidth == 0;
    /// <summary>LAST_CPUPID_NOT_IN_PAGE_FLAGS: last_cpupid moved to its own word of struct page.</summary>
    public bool LastCpupidNotInPageFlags => LastCpupidShift != 0 && LastCpupidWidth == 0;
    /// <summary>NR_UNUSED_PAGEFLAG_BITS.</summary>
    public int UnusedBits => BitsPerLong - (SectionsWidth + NodesWidth + ZonesWidth + LastCpupidShift + KasanTagWidth + LruGenWidth + LruRefsWidth + NrPageflags);

    /// <summary>ZONES_SHIFT for MAX_NR_ZONES (an #error beyond 8 zones).</summary>
    public static int ZonesShift(int maxNrZones) => maxNrZones switch
    {
        < 2 => 0,
        2 => 1,
        <= 4 => 2,
        <= 8 => 3,
        _ => throw new ArgumentOutOfRangeException(nameof(maxNrZones), "ZONES_SHIFT: too many zones configured"),
    };

    /// <summary>The header's arithmetic for <paramref name="c"/> with <paramref name="extraZones"/> more zones.</summary>
    public static PageFlagsLayout Compute(PageFlagsConfig c, int extraZones = 0)
    {
        int avail = BitsPerLong - c.NrPageflags;
        int zones = ZonesShift(c.MaxNrZones + extraZones);
        int sectionsShift = c.MaxPhysmemBits - c.SectionSizeBits;
        int sections = c.SparsememClassic ? sectionsShift : 0;
        int lruGen = c.LruGen ? 3 : 0;     // order_base_2(MAX_NR_GENS + 1), MAX_NR_GENS = 4
        int lruRefsWanted = c.LruGen ? 2 : 0;   // MAX_NR_TIERS - 2
        // Without vmemmap the node may leave page->flags; with it the header refuses to build.
        int nodes = zones + lruGen + sections + c.NodesShift <= avail ? c.NodesShift : 0;
        bool fits = c.SparsememClassic || nodes == c.NodesShift;
        int cpupidShift = c.NumaBalancing ? 8 + c.NrCpusBits : 0;
        int used = zones + lruGen + sections + nodes + c.KasanTagWidth;
        int cpupid = used + cpupidShift <= avail ? cpupidShift : 0;
        fits &= used + cpupid <= avail;
        int refs = Math.Max(0, Math.Min(lruRefsWanted, avail - used - cpupid));
        return new PageFlagsLayout(zones, sections, nodes, cpupidShift, cpupid, c.KasanTagWidth, lruGen, refs, c.NrPageflags, fits);
    }

    /// <summary>The configurations the model knows, each with a few NODES_SHIFT values. NR_PAGEFLAGS
    /// counts enum pageflags for a distribution config (x86-64: 25 with PG_uncached, no PG_arch_2/3;
    /// arm64: 26 with PG_arch_2/3 for MTE); NR_CPUS 8192 on x86-64, 512 on arm64. Zones: DMA, DMA32,
    /// NORMAL, MOVABLE, DEVICE (5); the "no ZONE_DMA" rows have 4.</summary>
    public static IReadOnlyList<PageFlagsConfig> KnownConfigs { get; } = Build();

    private static PageFlagsConfig[] Build()
    {
        var list = new List<PageFlagsConfig>();
        foreach (int nodes in new[] { 6, 10 })
        {
            list.Add(new($"x86-64 4-level, NODES_SHIFT {nodes}", 46, 27, nodes, 5, 25, 13, 0));
            list.Add(new($"x86-64 5-level, NODES_SHIFT {nodes}", 52, 27, nodes, 5, 25, 13, 0));
            list.Add(new($"x86-64 4-level no ZONE_DMA, NODES_SHIFT {nodes}", 46, 27, nodes, 4, 25, 13, 0));
            list.Add(new($"arm64 48-bit, NODES_SHIFT {nodes}", 48, 27, nodes, 5, 26, 9, 0));
            list.Add(new($"arm64 48-bit KASAN_SW_TAGS, NODES_SHIFT {nodes}", 48, 27, nodes, 5, 26, 9, 8));
            list.Add(new($"arm64 48-bit no ZONE_DMA, KASAN_SW_TAGS, NODES_SHIFT {nodes}", 48, 27, nodes, 4, 26, 9, 8));
        }
        return [.. list];
    }
}
