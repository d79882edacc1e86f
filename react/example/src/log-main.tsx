import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { TopicgateProvider } from '@topicgate/react';
import '../../../server/demo-pages/style.css';
import { connect, params } from './client.js';
import { LogViewer } from './log-viewer.js';

const id = params.get('build') ?? '';
const root = createRoot(document.getElementById('root')!);
if (/^\d+$/.test(id)) {
  const client = connect();
  root.render(
    <StrictMode>
      <TopicgateProvider client={client}>
        <LogViewer id={Number(id)} />
      </TopicgateProvider>
    </StrictMode>,
  );
} else {
  root.render(<p className="footnote">No build chosen: open this page from the dashboard, or as log.html?build=ID.</p>);
}
