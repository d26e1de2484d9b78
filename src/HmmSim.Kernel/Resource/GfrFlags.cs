namespace HmmSim.Kernel;

/// <summary>The GFR_* ("get free region") policy flags private to kernel/resource.c.</summary>
[Flags]
internal enum GfrFlags : ulong
{
    /// <summary>Ascending search; insert_resource the result (alloc_free_mem_region's policy).</summary>
    None = 0,
    /// <summary>GFR_DESCENDING: search top-down from min(base end, PHYSMEM_END).</summary>
    Descending = 1UL << 0,
    /// <summary>GFR_REQUEST_REGION: claim the range busy with __request_region (not insert).</summary>
    RequestRegion = 1UL << 1,
}
