import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { TopicgateProvider } from '@topicgate/react';
import '../../../server/demo-pages/style.css';
import { connect } from './client.js';
import { Dashboard } from './dashboard.js';

// One client for the page, made once, outside any render.
const client = connect();
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <TopicgateProvider client={client}>
      <Dashboard />
    </TopicgateProvider>
  </StrictMode>,
);
