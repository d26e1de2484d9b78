namespace HmmSim;

/// <summary>The alternatives the mailing-list threads and the posted series weigh, as switches on the
/// machine (<see cref="MachineConfig.Variants"/>). Every default is the latest posted behaviour (or
/// mainline), so a default configuration behaves as a machine without variants. A variant with no
/// meaning in today's design (all but <see cref="PgmapPlacement"/>) makes <c>new Machine(...)</c> throw
/// <see cref="ArgumentException"/> under <see cref="DevicePrivateDesign.PhysicalAddressSpace"/>.</summary>
public sealed record DesignVariants
{
    /// <summary>Which softleaf predicates count a device-private migration entry as a migration entry.
    /// Default <see cref="SoftleafMigrationRule.Consistent"/>.</summary>
    public SoftleafMigrationRule SoftleafMigration { get; init; }
    /// <summary>Where HMM_PFN_DEVICE_PRIVATE and HMM_PFN_ALLOW_P2P sit in an hmm_range_fault PFN word.
    /// Default <see cref="HmmPfnLayout.Disjoint"/>.</summary>
    public HmmPfnLayout HmmPfnLayout { get; init; }
    /// <summary>How page_vma_mapped_walk matches an entry against the folio it looks for.
    /// Default <see cref="RmapMatch.PvmwDevicePrivate"/>.</summary>
    public RmapMatch RmapMatch { get; init; }
    /// <summary>Where a ZONE_DEVICE page keeps its pgmap pointer. Default <see cref="PgmapPlacement.Folio"/>.</summary>
    public PgmapPlacement PgmapPlacement { get; init; }
    /// <summary>Which zone device-private pages belong to. Default <see cref="DevicePrivateZone.ZoneDevice"/>.</summary>
    public DevicePrivateZone Zone { get; init; }
    /// <summary>How a device-private page is named in entries, HMM output and migrate PFNs.
    /// Default <see cref="DevicePrivateIdentity.GlobalOffset"/>.</summary>
    public DevicePrivateIdentity Identity { get; init; }
    /// <summary>What describes a device-private page. Default <see cref="DevicePageMetadata.StructPage"/>.</summary>
    public DevicePageMetadata DevicePageMetadata { get; init; }

    /// <summary>True when every switch has its default value.</summary>
    public bool IsDefault => this == new DesignVariants();
}

/// <summary>The softleaf_is_migration*() rule for device-private migration entries.</summary>
public enum SoftleafMigrationRule
{
    /// <summary>v2 and later: every predicate agrees.</summary>
    Consistent,
    /// <summary>v1 of the swap-type patch: softleaf_is_migration(), _read_exclusive() and _write() say true
    /// for device-private migration entries, softleaf_is_migration_read() does not.</summary>
    AsPostedV1,
}

/// <summary>The hmm_range_fault PFN flag layout.</summary>
public enum HmmPfnLayout
{
    /// <summary>HMM_PFN_DEVICE_PRIVATE and HMM_PFN_ALLOW_P2P on different bits.</summary>
    Disjoint,
    /// <summary>Both flags on BITS_PER_LONG-7, as the two series were posted.</summary>
    AsPosted,
}

/// <summary>How page_vma_mapped_walk matches a page-table entry.</summary>
public enum RmapMatch
{
    /// <summary>Compares numbers, told a device-private offset from a PFN by PVMW_DEVICE_PRIVATE.</summary>
    PvmwDevicePrivate,
    /// <summary>Compares numbers and forgets the flag.</summary>
    PfnOnly,
}

/// <summary>Where pgmap lives.</summary>
public enum PgmapPlacement
{
    /// <summary>In the folio (seed 003 onwards).</summary>
    Folio,
    /// <summary>Sharing its word with compound_head, as before seed 003.</summary>
    PageUnion,
}

/// <summary>The zone of device-private pages.</summary>
public enum DevicePrivateZone
{
    /// <summary>ZONE_DEVICE, told apart from other kinds by pgmap->type.</summary>
    ZoneDevice,
    /// <summary>Huang Ying's ZONE_DEVICE_PRIVATE.</summary>
    ZoneDevicePrivate,
}

/// <summary>The identity of a device-private page.</summary>
public enum DevicePrivateIdentity
{
    /// <summary>One global device-private offset space, allocated per pgmap.</summary>
    GlobalOffset,
    /// <summary>Jason Gunthorpe's (space #, space index): each pgmap its own 0-based space.</summary>
    PerPagemapSpace,
}

/// <summary>The metadata behind a device-private page.</summary>
public enum DevicePageMetadata
{
    /// <summary>A whole struct page per device page.</summary>
    StructPage,
    /// <summary>Only the fields the census shows device-private pages use.</summary>
    Minimal,
}
