using System.Net;
using System.Text;

namespace CloudMirrorFs.Cloud.Tests;

/// <summary>
/// An HTTP proxy on 127.0.0.1 in front of a real test server that answers chosen requests itself with a throttling
/// or server error, the way S3 (503 SlowDown), Azure (503 ServerBusy) and gateways (429, 500) do. Everything else is
/// forwarded unchanged (the Host header kept, so request signatures still verify).
/// </summary>
public sealed class ThrottlingProxy : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HttpClient _client = new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false });
    private readonly int _target;
    private readonly Task _loop;
    private int _requests;
    private int _injected;

    public ThrottlingProxy(int targetPort)
    {
        _target = targetPort;
        Port = TestServers.FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public int Port { get; }

    /// <summary>Chooses, per request (method, path), the status and error code to answer instead of the server; null forwards it.</summary>
    public Func<string, string, (int Status, string Code)?>? Inject { get; set; }

    /// <summary>Requests seen.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Requests answered with an injected error.</summary>
    public int Injected => Volatile.Read(ref _injected);

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            _ = Task.Run(() => HandleAsync(context));
        }
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        HttpListenerRequest req = context.Request;
        HttpListenerResponse res = context.Response;
        try
        {
            Interlocked.Increment(ref _requests);
            using var body = new MemoryStream();
            await req.InputStream.CopyToAsync(body);
            if (Inject?.Invoke(req.HttpMethod, req.Url!.AbsolutePath) is { } error)
            {
                Interlocked.Increment(ref _injected);
                res.StatusCode = error.Status;
                res.ContentType = "application/xml";
                res.Headers["x-ms-error-code"] = error.Code;
                byte[] xml = Encoding.UTF8.GetBytes($"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{error.Code}</Code><Message>injected by the test proxy</Message></Error>");
                res.ContentLength64 = xml.Length;
                await res.OutputStream.WriteAsync(xml);
                return;
            }
            using var forward = new HttpRequestMessage(new HttpMethod(req.HttpMethod), $"http://127.0.0.1:{_target}{req.RawUrl}");
            if (body.Length > 0 || req.HttpMethod is "PUT" or "POST")
            {
                forward.Content = new ByteArrayContent(body.ToArray());
            }
            foreach (string name in req.Headers.AllKeys.OfType<string>())
            {
                if (name is "Host" or "Content-Length" or "Expect" or "Connection" or "Transfer-Encoding" or "Keep-Alive")
                {
                    continue;
                }
                string[] values = req.Headers.GetValues(name) ?? [];
                if (!forward.Headers.TryAddWithoutValidation(name, values))
                {
                    forward.Content?.Headers.TryAddWithoutValidation(name, values);
                }
            }
            forward.Headers.Host = req.Headers["Host"];
            using HttpResponseMessage answer = await _client.SendAsync(forward, HttpCompletionOption.ResponseHeadersRead);
            res.StatusCode = (int)answer.StatusCode;
            foreach (var (name, values) in answer.Headers.Concat(answer.Content.Headers))
            {
                if (name is "Transfer-Encoding" or "Content-Length" or "Connection" or "Keep-Alive")
                {
                    continue;
                }
                foreach (string v in values)
                {
                    res.Headers.Add(name, v);
                }
            }
            byte[] payload = await answer.Content.ReadAsByteArrayAsync();
            if (req.HttpMethod != "HEAD")
            {
                res.ContentLength64 = payload.Length;
                await res.OutputStream.WriteAsync(payload);
            }
            else if (answer.Content.Headers.ContentLength is { } n)
            {
                res.ContentLength64 = n;
            }
        }
        catch (Exception e) when (e is HttpListenerException or IOException or HttpRequestException)
        {
            // The client went away or the server refused: nothing to answer.
        }
        finally
        {
            try
            {
                res.Close();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _loop;
        _client.Dispose();
    }
}
