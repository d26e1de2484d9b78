namespace HmmSim;

/// <summary>mm/gup.c: get_user_pages and pin_user_pages.</summary>
internal static partial class Gup
{
    /// <summary>GUP_PIN_COUNTING_BIAS: a pin adds this to an order-0 folio's refcount.</summary>
    public const int PinCountingBias = 1024;
}
