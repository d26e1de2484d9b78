using K = HmmSim.Kernel;

namespace HmmSim;

/// <summary>One configuration's page->flags layout today and with ZONE_DEVICE_PRIVATE added
/// (include/linux/page-flags-layout.h's arithmetic).</summary>
/// <param name="Config">The configuration ("x86-64 4-level, NODES_SHIFT 10").</param>
/// <param name="NrPageflags">NR_PAGEFLAGS assumed for it.</param>
/// <param name="ZonesToday">MAX_NR_ZONES today.</param>
/// <param name="ZonesWidthToday">ZONES_WIDTH today.</param>
/// <param name="ZonesWidthProposal">ZONES_WIDTH with one more zone.</param>
/// <param name="UnusedToday">NR_UNUSED_PAGEFLAG_BITS today (0 where the header's count goes negative because LAST_CPUPID is out).</param>
/// <param name="UnusedProposal">NR_UNUSED_PAGEFLAG_BITS with the proposal.</param>
/// <param name="SpillsToday">What is out of page->flags today (LAST_CPUPID_NOT_IN_PAGE_FLAGS, LRU refs bits lost, or none).</param>
/// <param name="SpillsProposal">The same with the proposal.</param>
/// <param name="Builds">Whether the proposal's layout still builds (no "Not enough bits" #error).</param>
public sealed record PageFlagsLayoutRow(string Config, int NrPageflags, int ZonesToday, int ZonesWidthToday, int ZonesWidthProposal,
    int UnusedToday, int UnusedProposal, string SpillsToday, string SpillsProposal, bool Builds)
{
    /// <summary>The extra zone takes a bit of page->flags in this configuration.</summary>
    public bool CostsABit => ZonesWidthProposal > ZonesWidthToday;
    /// <summary>Something that was in page->flags is not with the proposal.</summary>
    public bool Spills => SpillsProposal != SpillsToday;
}

/// <summary>How a device-private entry's offset bits are spent on one architecture.</summary>
/// <param name="Arch">The architecture ("x86-64 4-level").</param>
/// <param name="OffsetBits">Offset bits the swap PTE encoding carries.</param>
/// <param name="IndexBits">Bits of page index (SWP_PFN_BITS = MAX_PHYSMEM_BITS - PAGE_SHIFT).</param>
/// <param name="MigrationBits">The migration entry's young and dirty bits above the index.</param>
/// <param name="SpaceBits">Bits left for a space id under (space #, space index).</param>
/// <param name="GlobalLimitBytes">Global-offset design: all device-private memory together.</param>
/// <param name="MaxBytesPerSpace">(space, index): one pagemap's largest size.</param>
/// <param name="MaxSpaces">(space, index): most pagemaps at once.</param>
public sealed record IdentityBudgetRow(string Arch, int OffsetBits, int IndexBits, int MigrationBits, int SpaceBits,
    ulong GlobalLimitBytes, ulong MaxBytesPerSpace, ulong MaxSpaces);

/// <summary>A kernel site the ZONE_DEVICE_PRIVATE proposal changes, by the kernel function.</summary>
/// <param name="Function">The kernel function or macro.</param>
/// <param name="File">Its file in Linux.</param>
/// <param name="Change">What changes and why.</param>
public sealed record ProposalSite(string Function, string File, string Change);

/// <summary>The figures `hmmsim proposals` and docs/proposals.md report that need no machine: the
/// page->flags layouts, the entry bit budget, the sites the zone proposal touches, the metadata sizes.</summary>
public static class ProposalFigures
{
    /// <summary>sizeof(struct page) on 64-bit without debug options.</summary>
    public const int StructPageBytes = 64;

    /// <summary>page->flags for every configuration the model knows, today and with ZONE_DEVICE_PRIVATE.</summary>
    public static IReadOnlyList<PageFlagsLayoutRow> PageFlagsLayouts() =>
        [.. K.PageFlagsLayout.KnownConfigs.Select(c =>
        {
            var today = K.PageFlagsLayout.Compute(c);
            var proposal = K.PageFlagsLayout.Compute(c, extraZones: 1);
            return new PageFlagsLayoutRow(c.Name, c.NrPageflags, c.MaxNrZones, today.ZonesWidth, proposal.ZonesWidth,
                Math.Max(0, today.UnusedBits), Math.Max(0, proposal.UnusedBits), Spill(today, c), Spill(proposal, c), proposal.Fits);
        })];

    private static string Spill(K.PageFlagsLayout l, K.PageFlagsConfig c)
    {
        var parts = new List<string>();
        if (l.NodeNotInPageFlags(c.NodesShift))
            parts.Add("NODE_NOT_IN_PAGE_FLAGS");
        if (l.LastCpupidNotInPageFlags)
            parts.Add("LAST_CPUPID_NOT_IN_PAGE_FLAGS");
        if (c.LruGen && l.LruRefsWidth < 2)
            parts.Add($"LRU_REFS_WIDTH {l.LruRefsWidth} of 2");
        return parts.Count == 0 ? "none" : string.Join(", ", parts);
    }

    /// <summary>The entry bit budget of each architecture the model knows, plus x86-64 5-level (computed
    /// from its MAX_PHYSMEM_BITS of 52 with the 4-level PTE swap encoding).</summary>
    public static IReadOnlyList<IdentityBudgetRow> IdentityBudgets()
    {
        var x86 = K.Arch.For(K.Architecture.X86_64);
        var arm = K.Arch.For(K.Architecture.Arm64);
        return [Row("x86-64 4-level", K.DevicePrivateIdentityLayout.For(x86)), Row("x86-64 5-level", K.DevicePrivateIdentityLayout.For(x86, 52)),
            Row("arm64 48-bit", K.DevicePrivateIdentityLayout.For(arm))];

        static IdentityBudgetRow Row(string name, K.DevicePrivateIdentityLayout l) =>
            new(name, l.OffsetBits, l.IndexBits, 2, l.SpaceBits, l.GlobalLimitBytes, l.MaxBytesPerSpace, l.MaxSpaces);
    }

    /// <summary>The fields the Minimal descriptor holds (what the census showed device-private folios use).</summary>
    public static IReadOnlyList<string> MinimalDescriptorFields => K.DevicePrivateDescriptor.FieldNames;

    /// <summary>Bytes per device page of the Minimal descriptor.</summary>
    public static int MinimalDescriptorBytes => K.DevicePrivateDescriptor.BytesPerPage;

    /// <summary>The kernel sites ZONE_DEVICE_PRIVATE changes (what the model changed, by kernel function).</summary>
    public static IReadOnlyList<ProposalSite> ZoneSitesChanged =>
        [.. K.ZoneDevicePrivateSites.Changed.Select(s => new ProposalSite(s.Function, s.File, s.Change))];

    /// <summary>Call sites that ask is_zone_device_page / is_device_private_page (and their folio
    /// forms) and needed no change, because the helpers answer through the zone.</summary>
    public static int ZoneQuestionCallSites => K.ZoneDevicePrivateSites.QuestionCallSites;

    /// <summary>Sites the (space #, space index) identity changes.</summary>
    public static IReadOnlyList<ProposalSite> IdentitySitesChanged =>
        [.. K.ZoneDevicePrivateSites.IdentityChanged.Select(s => new ProposalSite(s.Function, s.File, s.Change))];

    /// <summary>Sites the Minimal descriptor changes.</summary>
    public static IReadOnlyList<ProposalSite> MetadataSitesChanged =>
        [.. K.ZoneDevicePrivateSites.MetadataChanged.Select(s => new ProposalSite(s.Function, s.File, s.Change))];
}
