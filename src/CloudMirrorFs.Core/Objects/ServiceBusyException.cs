namespace CloudMirrorFs.Objects;

/// <summary>
/// The inner exception of an <see cref="MirrorError.Unavailable"/> error when the service answered but asked the
/// client to slow down or failed the request itself (HTTP 408, 429, 5xx: S3's SlowDown, Azure's ServerBusy): worth
/// retrying that one request in place, unlike an endpoint that does not answer at all.
/// </summary>
public sealed class ServiceBusyException : Exception
{
    /// <summary>Wraps the SDK's error.</summary>
    public ServiceBusyException(Exception inner)
        : base(inner?.Message, inner)
    {
    }

    /// <summary>True when <paramref name="e"/> reports a busy or failing service that answered.</summary>
    public static bool IsBusy(Exception e) => e is MirrorException { Error: MirrorError.Unavailable, InnerException: ServiceBusyException };
}
